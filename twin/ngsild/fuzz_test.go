package ngsild

import (
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

// fuzzEntity has an attribute of every kind q compares.
var fuzzEntity = entity{id: "urn:ngsi-ld:Device:x", typ: "Device", loc: orb.Point{9.2, 49.1}, geom: orb.Point{9.2, 49.1},
	attrs: []attr{
		{name: "temperature", kind: kindProperty, value: 21.5, observedAt: time.Unix(0, 0), unitCode: "CEL"},
		{name: "name", kind: kindProperty, value: "forum"},
		{name: "floors", kind: kindProperty, value: 4},
		{name: "category", kind: kindProperty, value: []string{"sensor", "meter"}},
		{name: "refBuilding", kind: kindRelationship, object: "urn:ngsi-ld:Building:b01"},
	}}

// FuzzQ parses q expressions (seeds in testdata/fuzz/FuzzQ) and evaluates
// those it accepts: neither may panic, and an expression that parses
// parses again the same after a round of spaces is refused or accepted
// consistently.
func FuzzQ(f *testing.F) {
	for _, s := range []string{"temperature==21.5", "temperature>20;name==\"forum\"", "(a==1|b!=2);c", "temperature==20..22",
		"category==\"meter\",\"x\"", "name~=\"^fo\"", "!temperature", "refBuilding==urn:ngsi-ld:Building:b01", "floors>=4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		x, err := parseQ(s)
		if err != nil {
			if x != nil {
				t.Fatalf("%q: an error and an expression", s)
			}
			return
		}
		x.match(&fuzzEntity)
		if len(s) > maxQueryLen {
			t.Fatalf("%q: longer than %d, accepted", s, maxQueryLen)
		}
	})
}

// FuzzGeoQuery parses georel, geometry and coordinates (seeds in
// testdata/fuzz/FuzzGeoQuery) and matches what it accepts against an
// entity: no panic, and an accepted geometry is valid.
func FuzzGeoQuery(f *testing.F) {
	f.Add("near;maxDistance==100", "Point", "[9.2,49.1]")
	f.Add("near;minDistance==1;maxDistance==2000", "Point", "[9.2,49.1]")
	f.Add("within", "Polygon", "[[[9,49],[10,49],[10,50],[9,50],[9,49]]]")
	f.Add("intersects", "MultiPolygon", "[[[[9,49],[10,49],[10,50],[9,50],[9,49]]]]")
	f.Add("intersects", "Point", "[9.2,49.1]")
	f.Fuzz(func(t *testing.T, georel, geometry, coordinates string) {
		g, err := parseGeoQuery(georel, geometry, coordinates)
		if err != nil || g == nil {
			return
		}
		if err := validGeometry(g.g); err != nil {
			t.Fatalf("accepted an invalid geometry: %v", err)
		}
		if g.rel != "near" && g.rel != "within" && g.rel != "intersects" {
			t.Fatalf("accepted georel %q", g.rel)
		}
		g.match(&fuzzEntity)
		if !strings.HasPrefix(georel, g.rel) {
			t.Fatalf("georel %q parsed as %q", georel, g.rel)
		}
	})
}

// TestQ evaluates q expressions on an entity with a number, a text, a
// whole number, an array and a relationship.
func TestQ(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want bool
		err  bool
	}{
		{q: "temperature==21.5", want: true}, {q: "temperature==21", want: false}, {q: "temperature!=21", want: true},
		{q: "temperature<21.5", want: false}, {q: "temperature<=21.5", want: true}, {q: "temperature>21", want: true}, {q: "temperature>=22", want: false},
		{q: "temperature==20..22", want: true}, {q: "temperature!=20..22", want: false}, {q: "temperature!=22..23", want: true},
		{q: "temperature==1,21.5", want: true}, {q: "temperature!=1,21.5", want: false},
		{q: `temperature=="21.5"`, want: false}, {q: `temperature!="x"`, want: false}, // a number is not text
		{q: `name=="forum"`, want: true}, {q: `name<"g"`, want: true}, {q: `name~="^fo.*m$"`, want: true}, {q: `name!~="^x"`, want: true},
		{q: "floors==4", want: true}, {q: "floors>4", want: false},
		{q: `category=="meter"`, want: true}, {q: `category!="meter"`, want: false}, {q: `category!="hvac"`, want: true},
		{q: `refBuilding=="urn:ngsi-ld:Building:b01"`, want: true}, {q: "refBuilding==urn:ngsi-ld:Building:b02", want: false},
		{q: "nosuch==1", want: false}, {q: "nosuch!=1", want: false}, {q: "nosuch", want: false}, {q: "!nosuch", want: true}, {q: "temperature", want: true},
		{q: "temperature>30|floors==4", want: true}, {q: "temperature>30;floors==4", want: false}, {q: "(temperature>30|floors==4);name", want: true},
		{q: "temperature>30|floors==4;name==\"x\"", want: false}, // ; binds tighter: a | (b ; c)
		{q: "", err: true}, {q: "a==", err: true}, {q: "a=>1", err: true}, {q: "(a==1", err: true}, {q: "a==1)", err: true}, {q: `a~="("`, err: true},
		{q: "a<1,2", err: true}, {q: "a==1..2..3", err: true}, {q: "!a==1", err: true}, {q: "1a==1", err: true}, {q: "a.b==1", err: true},
		{q: strings.Repeat("(", 20) + "a" + strings.Repeat(")", 20), err: true},
	} {
		x, err := parseQ(tc.q)
		if (err != nil) != tc.err {
			t.Errorf("%q: error %v, want error %v", tc.q, err, tc.err)
			continue
		}
		if err == nil {
			if got := x.match(&fuzzEntity); got != tc.want {
				t.Errorf("%q: %v, want %v", tc.q, got, tc.want)
			}
		}
	}
}
