package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/citymesh/citymesh/auth"
	"golang.org/x/term"
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
// with -b; otherwise, on a terminal, it is asked for twice without echo,
// and from anything else (a pipe, a file) it is the first line read.
func runPasswd(ctx context.Context, args []string) error {
	var src passwordSource = stdinLine{os.Stdin}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		src = terminalPrompt{fd: fd, prompts: os.Stderr}
	}
	return passwd(args, src)
}

// passwordSource gives passwd the password when -b does not.
type passwordSource interface {
	readPassword() ([]byte, error)
}

// terminalPrompt asks for the password on a terminal, without echo, and
// then once more to confirm it, as mosquitto_passwd does.
type terminalPrompt struct {
	fd      int       // the terminal
	prompts io.Writer // where the prompts go (standard error)
}

func (p terminalPrompt) readPassword() ([]byte, error) {
	ask := func(prompt string) ([]byte, error) {
		fmt.Fprint(p.prompts, prompt)
		pw, err := term.ReadPassword(p.fd)
		fmt.Fprintln(p.prompts) // the Enter that was not echoed
		if err != nil {
			return nil, fmt.Errorf("read the password: %w", err)
		}
		return pw, nil
	}
	pw, err := ask("Password: ")
	if err != nil {
		return nil, err
	}
	if len(pw) == 0 {
		return nil, errors.New("empty password")
	}
	again, err := ask("Reenter password: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(pw, again) {
		return nil, errors.New("the passwords do not match")
	}
	return pw, nil
}

// stdinLine reads the password from the first line of r, which is not a
// terminal.
type stdinLine struct{ r io.Reader }

func (s stdinLine) readPassword() ([]byte, error) {
	line, err := bufio.NewReader(io.LimitReader(s.r, maxPasswordLine)).ReadString('\n')
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

// passwd runs the passwd command with args, taking the password from src
// unless -b or -D is given.
func passwd(args []string, src passwordSource) error {
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
		if password, err = src.readPassword(); err != nil {
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
