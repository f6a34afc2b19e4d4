package meshfail_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// labCount numbers the labs of this test process, so that every lab's
// namespaces and devices have names of their own.
var labCount atomic.Int32

// lab is the network of one test: a network namespace per node, a veth pair
// for each mesh link between two nodes, and a management veth from each
// namespace to the root namespace for the test's own clients. Everything is
// removed when the test ends, also when it fails.
type lab struct {
	t      *testing.T
	prefix string // begins the names of this lab's namespaces

	mu    sync.Mutex
	nlink int // wires made so far
}

// host is one network namespace and the node it holds.
type host struct {
	name string     // the node's name
	ns   string     // the namespace's name
	dev  string     // the management veth's root-namespace end
	addr netip.Addr // the node's address on its management veth
}

// wire is a veth pair between two hosts: the link a mesh connection takes,
// and what the tests cut.
type wire struct {
	a, b         *host
	devA, devB   string     // the device in a's and in b's namespace
	addrA, addrB netip.Addr // their addresses
}

// newLab checks that network namespaces can be made here and returns an
// empty lab. It skips the test when they cannot: the test needs root, the ip
// command and permission to add namespaces.
func newLab(t *testing.T) *lab {
	t.Helper()
	if testing.Short() {
		t.Skip("meshfail: runs the real binary in network namespaces for minutes; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("meshfail: needs root to create network namespaces (ip netns add); run as root, e.g. in CI's container")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("meshfail: the ip command (iproute2) is not installed")
	}
	l := &lab{t: t, prefix: fmt.Sprintf("cmf%d-%d", os.Getpid(), labCount.Add(1))}
	probe := l.prefix + "-probe"
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("meshfail: ip netns add is not permitted here: %v: %s", err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command("ip", "netns", "del", probe).CombinedOutput(); err != nil {
		t.Fatalf("ip netns del %s: %v: %s", probe, err, out)
	}
	return l
}

// ip runs the ip command with args and fails the test if it fails.
func (l *lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// addHost makes the namespace of node name, with its loopback device up and
// a management veth to the root namespace. The namespace is deleted when
// the test ends (after the processes in it have been stopped, since their
// cleanups were registered later).
func (l *lab) addHost(name string) *host {
	l.t.Helper()
	h := &host{name: name, ns: l.prefix + "-" + name, dev: fmt.Sprintf("%sm%d", devPrefix(), labDev.Add(1))}
	l.ip("netns", "add", h.ns)
	l.t.Cleanup(func() {
		// Deleting the namespace destroys its veth ends, and so their
		// peers in the root namespace and in other namespaces.
		if out, err := exec.Command("ip", "netns", "del", h.ns).CombinedOutput(); err != nil {
			l.t.Errorf("ip netns del %s: %v: %s", h.ns, err, bytes.TrimSpace(out))
		}
		exec.Command("ip", "link", "del", h.dev).Run() // gone already, normally
	})
	l.ip("-n", h.ns, "link", "set", "lo", "up")
	sub := l.freeMgmtSubnet()
	rootAddr := netip.AddrFrom4([4]byte{10, 202, sub, 1})
	h.addr = netip.AddrFrom4([4]byte{10, 202, sub, 2})
	l.ip("link", "add", h.dev, "type", "veth", "peer", "name", "mgmt", "netns", h.ns)
	l.ip("addr", "add", rootAddr.String()+"/24", "dev", h.dev)
	l.ip("link", "set", h.dev, "up")
	l.ip("-n", h.ns, "addr", "add", h.addr.String()+"/24", "dev", "mgmt")
	l.ip("-n", h.ns, "link", "set", "mgmt", "up")
	return h
}

// labDev numbers the root-namespace devices of this test process.
var labDev atomic.Int32

// devPrefix begins the names of this process's root-namespace devices:
// "cm" and the process ID in hex, short enough for the 15 characters a
// device name may have.
func devPrefix() string { return fmt.Sprintf("cm%x", os.Getpid()) }

// freeMgmtSubnet picks the third octet of a 10.202.X.0/24 management subnet
// that no device of the root namespace uses (another lab of this process,
// or of a concurrent run).
func (l *lab) freeMgmtSubnet() byte {
	l.t.Helper()
	out, err := exec.Command("ip", "-4", "-o", "addr", "show").Output()
	if err != nil {
		l.t.Fatalf("ip addr show: %v", err)
	}
	used := make(map[byte]bool)
	for _, f := range strings.Fields(string(out)) {
		if p, err := netip.ParsePrefix(f); err == nil && p.Addr().Is4() {
			a := p.Addr().As4()
			if a[0] == 10 && a[1] == 202 {
				used[a[2]] = true
			}
		}
	}
	for x := 1; x < 255; x++ {
		if !used[byte(x)] {
			return byte(x)
		}
	}
	l.t.Fatal("no free management subnet in 10.202.0.0/16")
	return 0
}

// connect joins hosts a and b with a veth pair on a subnet of their own
// (10.201.N.0/24, inside the two namespaces only) and returns it. Its devices
// are named after the peer they lead to.
func (l *lab) connect(a, b *host) *wire {
	l.t.Helper()
	l.mu.Lock()
	l.nlink++
	n := l.nlink
	l.mu.Unlock()
	w := &wire{a: a, b: b, devA: devName("to-" + b.name), devB: devName("to-" + a.name),
		addrA: netip.AddrFrom4([4]byte{10, 201, byte(n), 1}), addrB: netip.AddrFrom4([4]byte{10, 201, byte(n), 2})}
	l.ip("link", "add", w.devA, "netns", a.ns, "type", "veth", "peer", "name", w.devB, "netns", b.ns)
	l.ip("-n", a.ns, "addr", "add", w.addrA.String()+"/24", "dev", w.devA)
	l.ip("-n", b.ns, "addr", "add", w.addrB.String()+"/24", "dev", w.devB)
	l.ip("-n", a.ns, "link", "set", w.devA, "up")
	l.ip("-n", b.ns, "link", "set", w.devB, "up")
	return w
}

// devName shortens a device name to the 15 characters Linux allows.
func devName(s string) string {
	if len(s) > 15 {
		return s[:15]
	}
	return s
}

// addrOf returns the address at which host h reaches host peer over their
// wire.
func (w *wire) addrOf(peer *host) netip.Addr {
	if peer == w.a {
		return w.addrA
	}
	return w.addrB
}

// cut takes both ends of the wire down: nothing crosses it any more, and
// the connections over it are left hanging, as when a cable is pulled.
func (l *lab) cut(w *wire) {
	l.t.Helper()
	l.ip("-n", w.a.ns, "link", "set", w.devA, "down")
	l.ip("-n", w.b.ns, "link", "set", w.devB, "down")
}

// heal brings both ends of the wire up again.
func (l *lab) heal(w *wire) {
	l.t.Helper()
	l.ip("-n", w.a.ns, "link", "set", w.devA, "up")
	l.ip("-n", w.b.ns, "link", "set", w.devB, "up")
}

// nowhere is a link-layer address that no device in a lab has.
const nowhere = "02:00:00:00:00:01"

// blackhole makes the wire drop every packet while both its devices stay up
// and keep their addresses and routes: each end's neighbour entry for the
// other becomes a permanent one for an address no device has, so frames go
// out but the other end never takes them in. Neither node is told anything,
// no send fails: as when a cable is pulled between two switches, or a
// firewall starts dropping the link's traffic.
func (l *lab) blackhole(w *wire) {
	l.t.Helper()
	l.ip("-n", w.a.ns, "neigh", "replace", w.addrB.String(), "lladdr", nowhere, "nud", "permanent", "dev", w.devA)
	l.ip("-n", w.b.ns, "neigh", "replace", w.addrA.String(), "lladdr", nowhere, "nud", "permanent", "dev", w.devB)
}

// unblackhole removes the false neighbour entries: the ends find each other
// again by ARP.
func (l *lab) unblackhole(w *wire) {
	l.t.Helper()
	l.ip("-n", w.a.ns, "neigh", "del", w.addrB.String(), "dev", w.devA)
	l.ip("-n", w.b.ns, "neigh", "del", w.addrA.String(), "dev", w.devB)
}
