package demo

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/citymesh/citymesh/api"
	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/campus"
)

// User is one of the demo's users: a broker user of its password file, who
// signs in to the dashboard and the HTTP APIs and connects over MQTT.
type User struct {
	// Name and Password are the credentials.
	Name, Password string
	// Role is the user's role in the dashboard and the APIs (api.RoleAdmin,
	// api.RoleOperator, api.RoleTenantAdmin, api.RoleTenantUser).
	Role string
	// Tenant is the user's tenant; "" for the administrator and the
	// operator.
	Tenant string
}

// UsersFile is the demo's password file in its data directory, written
// afresh at every start.
const UsersFile = "demo-users"

// demoHash are the hash parameters of the demo's passwords: argon2id with
// 19 MiB, 2 passes and one lane, the OWASP Password Storage Cheat Sheet's
// first recommended configuration, so that the demo's dozen users hash
// in a fraction of a second (citymesh passwd uses the stronger defaults).
var demoHash = auth.HashParams{Memory: 19 * 1024, Time: 2, Threads: 1}

// makeUsers writes the demo's password file into dir: an administrator
// (admin), an operator (operator), one user per tenant of m named after
// the tenant, and for the first tenant also its administrator
// ({tenant}-admin). Passwords are random, new at every start.
func makeUsers(m *campus.Model, dir string) (string, []User, error) {
	users := []User{{Name: "admin", Role: api.RoleAdmin}, {Name: "operator", Role: api.RoleOperator}}
	for i, t := range m.Tenants {
		if i == 0 {
			users = append(users, User{Name: t.ID + "-admin", Role: api.RoleTenantAdmin, Tenant: t.ID})
		}
		users = append(users, User{Name: t.ID, Role: api.RoleTenantUser, Tenant: t.ID})
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("demo: users: %w", err)
	}
	path := filepath.Join(dir, UsersFile)
	f := auth.NewPasswordFile(path)
	for i := range users {
		u := &users[i]
		u.Password = password()
		hash, err := auth.HashPassword([]byte(u.Password), demoHash)
		if err != nil {
			return "", nil, fmt.Errorf("demo: users: %w", err)
		}
		var groups []string
		switch u.Role {
		case api.RoleAdmin, api.RoleTenantAdmin:
			groups = []string{auth.AdminGroup}
		case api.RoleOperator:
			groups = []string{api.RoleOperator}
		}
		if err := f.Set(u.Name, hash, groups, u.Tenant); err != nil {
			return "", nil, fmt.Errorf("demo: users: %s: %w", u.Name, err)
		}
	}
	if err := f.Save(); err != nil {
		return "", nil, fmt.Errorf("demo: users: %w", err)
	}
	return path, users, nil
}

// password returns 16 random characters of the base32 alphabet (80 bits).
func password() string { return rand.Text()[:16] }
