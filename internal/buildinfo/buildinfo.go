// Package buildinfo says which citymesh this is: its version, the source
// revision it was built from and the Go release that built it. They come
// from the build information the Go toolchain records in every binary
// (runtime/debug.ReadBuildInfo); a release build may set them instead:
//
//	go build -ldflags "-X github.com/citymesh/citymesh/internal/buildinfo.version=v0.2.0 \
//	    -X github.com/citymesh/citymesh/internal/buildinfo.revision=$(git rev-parse HEAD)" ./cmd/citymesh
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Set by -ldflags -X; empty means "from the build information".
var (
	version  string
	revision string
)

// Info is what a build says of itself.
type Info struct {
	// Version is the module version ("v0.2.0"), or "(devel)" for a build
	// from a working tree.
	Version string
	// Revision is the version control revision ("" when unknown), with
	// "+dirty" appended when the working tree had changes.
	Revision string
	// Time is the revision's commit time in RFC 3339, "" when unknown.
	Time string
	// GoVersion is the Go release that built the binary.
	GoVersion string
}

var (
	once sync.Once
	info Info
)

// Get returns the build's information.
func Get() Info {
	once.Do(func() { info = read(version, revision) })
	return info
}

func read(version, revision string) Info {
	i := Info{Version: "(devel)", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			i.Version = bi.Main.Version
		}
		i.GoVersion = bi.GoVersion
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Revision = s.Value
			case "vcs.time":
				i.Time = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && i.Revision != "" {
			i.Revision += "+dirty"
		}
	}
	if version != "" {
		i.Version = version
	}
	if revision != "" {
		i.Revision = revision
	}
	return i
}

// String is the one-line form of the information, as `citymesh version`
// prints it: "citymesh v0.2.0 (revision 1a2b3c4d, 2026-05-01T10:00:00Z) go1.26.8".
func (i Info) String() string {
	s := "citymesh " + i.Version
	if i.Revision != "" {
		s += " (revision " + shorten(i.Revision)
		if i.Time != "" {
			s += ", " + i.Time
		}
		s += ")"
	}
	return s + " " + i.GoVersion
}

// shorten keeps the first 12 hexadecimal digits of a revision and its
// "+dirty" mark.
func shorten(rev string) string {
	const n = 12
	suffix := ""
	if i := len(rev) - len("+dirty"); i > 0 && rev[i:] == "+dirty" {
		rev, suffix = rev[:i], "+dirty"
	}
	if len(rev) > n {
		rev = rev[:n]
	}
	return rev + suffix
}
