package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/citymesh/citymesh/auth"
)

func init() {
	register("passwd", "manage a password file: passwd [-c] [-b] [-D] FILE USER [PASSWORD]", runPasswd)
}

// passwdHashParams are the argon2id parameters of the hashes passwd makes;
// tests make them cheap.
var passwdHashParams = auth.DefaultHashParams

const passwdUsage = "usage: citymesh passwd [-c] [-b] [-D] [--groups g1,g2] [--tenant t] [--bcrypt] FILE USER [PASSWORD]"

// maxPasswordLine bounds the password read from standard input.
const maxPasswordLine = 64 << 10

// runPasswd implements `citymesh passwd`, after mosquitto_passwd: it adds a
// user to a password file or changes one's password (and groups and
// tenant), or deletes a user (-D). The password comes from the command line
// with -b, otherwise from the first line of standard input, which must not
// be a terminal: without golang.org/x/term the password could not be read
// there without echoing it.
func runPasswd(ctx context.Context, args []string) error {
	return passwd(args, os.Stdin, isTerminal(os.Stdin))
}

// isTerminal reports whether f looks like a terminal: a character device.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// passwd runs the passwd command with args, reading a password from stdin
// unless -b or -D is given; terminal says whether stdin is a terminal.
func passwd(args []string, stdin io.Reader, terminal bool) error {
	fset := flag.NewFlagSet("passwd", flag.ContinueOnError)
	create := fset.Bool("c", false, "create a new password file, overwriting any existing one")
	batch := fset.Bool("b", false, "batch mode: take the password from the command line")
	del := fset.Bool("D", false, "delete the user")
	groups := fset.String("groups", "", "the user's `groups`, comma-separated; members of \"admin\" are administrators (default: keep the user's)")
	tenant := fset.String("tenant", "", "the user's `tenant` (default: keep the user's)")
	useBcrypt := fset.Bool("bcrypt", false, "hash the password with bcrypt instead of argon2id")
	fset.Usage = func() {
		fmt.Fprintln(fset.Output(), passwdUsage)
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fset.Visit(func(f *flag.Flag) { given[f.Name] = true })
	want := 2
	if *batch {
		want = 3
	}
	switch {
	case *del && *create:
		return errors.New("-c and -D do not go together")
	case *del && (*batch || given["groups"] || given["tenant"] || *useBcrypt):
		return errors.New("-D takes no -b, --groups, --tenant or --bcrypt")
	case !*batch && fset.NArg() == 3:
		return errors.New("a password on the command line needs -b")
	case fset.NArg() != want:
		return fmt.Errorf("want %d arguments, have %d; %s", want, fset.NArg(), passwdUsage)
	}
	file, user := fset.Arg(0), fset.Arg(1)

	var pf *auth.PasswordFile
	if *create {
		pf = auth.NewPasswordFile(file)
	} else {
		var err error
		if pf, err = auth.LoadPasswordFile(file); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s does not exist (-c creates it)", file)
		} else if err != nil {
			return err
		}
	}
	if *del {
		if !pf.Delete(user) {
			return fmt.Errorf("user %q is not in %s", user, file)
		}
		return pf.Save()
	}

	var password []byte
	if *batch {
		password = []byte(fset.Arg(2))
	} else {
		var err error
		if password, err = readPassword(stdin, terminal); err != nil {
			return err
		}
	}
	if len(password) == 0 {
		return errors.New("empty password")
	}
	_, oldGroups, oldTenant, _ := pf.Lookup(user)
	if given["groups"] {
		oldGroups = nil
		if strings.TrimSpace(*groups) != "" {
			for g := range strings.SplitSeq(*groups, ",") {
				oldGroups = append(oldGroups, strings.TrimSpace(g))
			}
		}
	}
	if given["tenant"] {
		oldTenant = *tenant
	}
	params := passwdHashParams
	if *useBcrypt {
		params = auth.HashParams{Bcrypt: true}
	}
	hash, err := auth.HashPassword(password, params)
	if err != nil {
		return err
	}
	if err := pf.Set(user, hash, oldGroups, oldTenant); err != nil {
		return err
	}
	return pf.Save()
}

// readPassword reads a password, the first line of stdin.
func readPassword(stdin io.Reader, terminal bool) ([]byte, error) {
	if terminal {
		return nil, errors.New("cannot read a password from a terminal without echoing it: " +
			"pipe it in (read -rs P; printf '%s\\n' \"$P\" | citymesh passwd FILE USER) or use -b FILE USER PASSWORD")
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, maxPasswordLine)).ReadString('\n')
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read the password: %w", err)
	}
	if err == io.EOF && len(line) == maxPasswordLine {
		return nil, fmt.Errorf("password longer than %d bytes", maxPasswordLine)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return nil, errors.New("no password on standard input")
	}
	return []byte(line), nil
}
