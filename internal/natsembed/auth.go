package natsembed

import (
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats-server/v2/server"
)

// Auth is the authorization an embedded server enforces: the users of a NATS server
// configuration file, each with its permissions. See LoadAuth.
type Auth struct {
	users   []*server.User
	nkeys   []*server.NkeyUser
	timeout float64
}

// LoadAuth reads the authorization block of a NATS server configuration file, for example
//
//	authorization {
//	  users = [
//	    { user: worker, password: $WORKER_NATS_PASSWORD, permissions: { publish: [...], subscribe: [...] } }
//	  ]
//	}
//
// such as the one fulfil ships (deploy/nats/auth.conf). Users log in with a user name and a
// password (clear or bcrypt) or with an nkey. $NAME references are resolved from the file
// and then from the environment, as nats-server does. Settings other than the authorization
// are ignored; accounts, operators (JWT), a single token or user, and no_auth_user (which
// would let anonymous clients in) are refused: an embedded server serves one account.
func LoadAuth(path string) (*Auth, error) {
	o, err := server.ProcessConfigFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	switch {
	case len(o.TrustedOperators) > 0 || len(o.TrustedKeys) > 0:
		return nil, fmt.Errorf("auth file %s: operators (JWT) need an external NATS server; the embedded one takes users and nkeys", path)
	case len(o.Accounts) > 0:
		return nil, fmt.Errorf("auth file %s: accounts need an external NATS server; the embedded one takes users and nkeys in one account", path)
	case o.NoAuthUser != "":
		return nil, fmt.Errorf("auth file %s: no_auth_user would let anonymous clients in as %q; remove it", path, o.NoAuthUser)
	case o.Authorization != "" || o.Username != "":
		return nil, fmt.Errorf("auth file %s: a single token or user cannot carry permissions; list users (authorization { users = [...] })", path)
	case len(o.Users) == 0 && len(o.Nkeys) == 0:
		return nil, fmt.Errorf("auth file %s defines no users (authorization { users = [...] })", path)
	}
	for _, u := range o.Users {
		if u.Password == "" {
			return nil, fmt.Errorf("auth file %s: user %q has no password", path, u.Username)
		}
	}
	return &Auth{users: o.Users, nkeys: o.Nkeys, timeout: o.AuthTimeout}, nil
}

// Users returns the user names and nkeys (public keys) that may log in.
func (a *Auth) Users() []string {
	var out []string
	for _, u := range a.users {
		out = append(out, u.Username)
	}
	for _, n := range a.nkeys {
		out = append(out, n.Nkey)
	}
	return out
}

// HasUser reports whether name is a user name or public nkey of a.
func (a *Auth) HasUser(name string) bool { return slices.Contains(a.Users(), name) }

// Permissions returns the permissions of a user (by name or public nkey), nil for a user
// without restrictions, and false for an unknown user.
func (a *Auth) Permissions(name string) (*server.Permissions, bool) {
	for _, u := range a.users {
		if u.Username == name {
			return u.Permissions, true
		}
	}
	for _, n := range a.nkeys {
		if n.Nkey == name {
			return n.Permissions, true
		}
	}
	return nil, false
}

// apply makes o require a's users.
func (a *Auth) apply(o *server.Options) error {
	if a == nil {
		return nil
	}
	if len(a.users) == 0 && len(a.nkeys) == 0 {
		return errors.New("natsembed: Auth without users")
	}
	for _, u := range a.users {
		c := *u
		c.Account = nil // the global account, where JetStream runs
		o.Users = append(o.Users, &c)
	}
	for _, n := range a.nkeys {
		c := *n
		c.Account = nil
		o.Nkeys = append(o.Nkeys, &c)
	}
	o.AuthTimeout = a.timeout
	return nil
}
