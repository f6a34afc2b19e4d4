package auth

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchStaticRules returns n rules without placeholders: for each building
// b{i}, a deny of its private subtree every tenth building, then an allow of
// the building for user u{i} and group ops.
func benchStaticRules(n int) []Rule {
	rules := make([]Rule, 0, n)
	for i := 0; len(rules) < n; i++ {
		if i%10 == 0 {
			rules = append(rules, Rule{Allow: false, Actions: Publish | Receive, Filter: fmt.Sprintf("energy/b%d/private/#", i)})
		}
		rules = append(rules, Rule{
			Allow:   true,
			Actions: Publish | Receive,
			Filter:  fmt.Sprintf("energy/b%d/#", i),
			Users:   []string{fmt.Sprintf("u%d", i)},
			Groups:  []string{"ops"},
		})
	}
	return rules[:n]
}

// benchDynamicRules returns n rules with %u: per building, a user's own
// subtree, with a deny every tenth rule.
func benchDynamicRules(n int) []Rule {
	rules := make([]Rule, n)
	for i := range rules {
		rules[i] = Rule{Allow: i%10 != 0, Actions: Publish | Receive, Filter: fmt.Sprintf("energy/b%d/%%u/#", i)}
	}
	return rules
}

func BenchmarkACL(b *testing.B) {
	for _, bc := range []struct {
		name  string
		rules []Rule
		// topic returns the i-th topic of the building the identity owns,
		// or of a random building.
		topic func(r *rand.Rand, building, i int) string
	}{
		{"static-10", benchStaticRules(10), staticTopic},
		{"static-1000", benchStaticRules(1000), staticTopic},
		{"dynamic-1000", benchDynamicRules(1000), func(r *rand.Rand, building, i int) string {
			return fmt.Sprintf("energy/b%d/u%d/meter/%d", r.IntN(1000), building, i)
		}},
	} {
		acl, err := NewACL(bc.rules, false)
		if err != nil {
			b.Fatal(err)
		}
		const building = 5
		user := &Identity{User: fmt.Sprintf("u%d", building), ClientID: "c1", Groups: []string{"staff"}, Method: "password"}
		ops := &Identity{User: "operator", ClientID: "c2", Groups: []string{"staff", "ops"}, Method: "password"}

		b.Run(bc.name+"/publish-hit", func(b *testing.B) {
			a := acl.For(user)
			t := bc.topic(rand.New(rand.NewPCG(1, 1)), building, 1)
			a.Allow(Publish, t)
			b.ReportAllocs()
			for b.Loop() {
				a.Allow(Publish, t)
			}
		})
		b.Run(bc.name+"/publish-hit-200", func(b *testing.B) {
			// A cache nearly full of the topics a client uses.
			r := rand.New(rand.NewPCG(1, 3))
			topics := make([]string, 200)
			for i := range topics {
				topics[i] = bc.topic(r, building, i)
			}
			a := acl.For(user)
			for _, t := range topics {
				a.Allow(Publish, t)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				a.Allow(Publish, topics[i])
				if i++; i == len(topics) {
					i = 0
				}
			}
		})
		for _, who := range []struct {
			name string
			id   *Identity
		}{{"user", user}, {"ops", ops}} {
			b.Run(bc.name+"/publish-miss-"+who.name, func(b *testing.B) {
				// More distinct topics than the cache holds, asked in turn:
				// every one is a miss.
				r := rand.New(rand.NewPCG(1, 2))
				topics := make([]string, 4*cacheSize+1)
				for i := range topics {
					topics[i] = bc.topic(r, building, i)
				}
				a := acl.For(who.id)
				for _, t := range topics {
					a.Allow(Publish, t)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					a.Allow(Publish, topics[i])
					if i++; i == len(topics) {
						i = 0
					}
				}
			})
			b.Run(bc.name+"/for-"+who.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					acl.For(who.id)
				}
			})
		}
	}
}

func staticTopic(r *rand.Rand, building, i int) string {
	if r == nil || i%2 == 0 {
		return fmt.Sprintf("energy/b%d/meter/%d", building, i)
	}
	return fmt.Sprintf("energy/b%d/meter/%d", r.IntN(1000), i)
}

// BenchmarkACLSubscribe measures Subscribe checks on cache misses: filters
// that each need a walk of the trie.
func BenchmarkACLSubscribe(b *testing.B) {
	rules := benchStaticRules(1000)
	for i := range rules {
		rules[i].Actions |= Subscribe
	}
	acl, err := NewACL(rules, false)
	if err != nil {
		b.Fatal(err)
	}
	a := acl.For(&Identity{User: "u500", Groups: []string{"ops"}, Method: "password"})
	filters := make([]string, 4*cacheSize+1)
	for i := range filters {
		filters[i] = fmt.Sprintf("energy/b%d/+/%d/#", i%1000, i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a.Allow(Subscribe, filters[i])
		if i++; i == len(filters) {
			i = 0
		}
	}
}
