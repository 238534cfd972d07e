package veritrail

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SSOConfig is an organization's single sign-on: the console signs its
// people in through an OpenID provider (authorization code flow with
// PKCE), as a relying party registered there.
type SSOConfig struct {
	OrgID   int64  `json:"-"`
	Enabled bool   `json:"enabled"`
	Issuer  string `json:"issuer"`
	// ClientID and the client secret are the registration at the
	// provider. The secret is kept sealed under the master key (context
	// SSOSecretContext) and never answered.
	ClientID           string `json:"client_id"`
	ClientSecretSealed string `json:"client_secret_sealed,omitempty"`
	// AllowedDomains are the e-mail domains that may sign in (lower case);
	// empty: any. The provider must say the address is verified.
	AllowedDomains []string `json:"allowed_domains"`
	// GroupsClaim names the claim that lists a person's groups ("groups");
	// GroupRoles maps them to roles, the first match in order winning;
	// DefaultRole applies when none matches ("": such people may not sign
	// in).
	GroupsClaim string      `json:"groups_claim"`
	GroupRoles  []GroupRole `json:"group_roles"`
	DefaultRole string      `json:"default_role"`
	// CreateUsers creates a user at a person's first sign-in; otherwise
	// only users created beforehand (matched by e-mail, then kept by
	// subject) may sign in.
	CreateUsers bool      `json:"create_users"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// GroupRole maps a provider group to a role.
type GroupRole struct {
	Group string `json:"group"`
	Role  string `json:"role"`
}

// SSOSecretContext is the sealing context of org's client secret: a
// sealed secret moved to another organization does not open.
func SSOSecretContext(org int64) string { return "sso-client-secret/" + strconv.FormatInt(org, 10) }

// UnmarshalSSOConfig reads org's settings as a store keeps them (JSON).
func UnmarshalSSOConfig(org int64, body []byte) (*SSOConfig, error) {
	var c SSOConfig
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("single sign-on settings of org %d: %w", org, err)
	}
	c.OrgID = org
	return &c, nil
}

// Validate checks the configuration, names the offending field and
// lower-cases the domains.
func (c *SSOConfig) Validate() error {
	u, err := url.Parse(c.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return Errorf(EInvalid, "issuer: must be the provider's issuer URL, such as https://accounts.example.com, got %q", c.Issuer)
	}
	if strings.TrimSpace(c.ClientID) == "" || len(c.ClientID) > 1000 {
		return Errorf(EInvalid, "client_id: give the client id registered at the provider")
	}
	for i, d := range c.AllowedDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" || strings.ContainsAny(d, "@/ ") || !strings.Contains(d, ".") && d != "localhost" {
			return Errorf(EInvalid, "allowed_domains[%d]: %q is not a domain such as example.com", i, c.AllowedDomains[i])
		}
		c.AllowedDomains[i] = d
	}
	for i, g := range c.GroupRoles {
		if g.Group == "" {
			return Errorf(EInvalid, "group_roles[%d].group: empty", i)
		}
		if !ValidRole(g.Role) {
			return Errorf(EInvalid, "group_roles[%d].role: %q is not one of %s", i, g.Role, strings.Join(Roles, ", "))
		}
	}
	if len(c.GroupRoles) > 0 && c.GroupsClaim == "" {
		return Errorf(EInvalid, "groups_claim: name the claim that lists groups (such as groups) to map them to roles")
	}
	if c.DefaultRole != "" && !ValidRole(c.DefaultRole) {
		return Errorf(EInvalid, "default_role: %q is not one of %s (or empty: no sign-in without a mapped group)", c.DefaultRole, strings.Join(Roles, ", "))
	}
	return nil
}

// EmailAllowed reports whether an address may sign in by its domain.
func (c *SSOConfig) EmailAllowed(email string) bool {
	at := strings.LastIndexByte(email, '@')
	if at < 1 {
		return false
	}
	return len(c.AllowedDomains) == 0 || slices.Contains(c.AllowedDomains, strings.ToLower(email[at+1:]))
}

// RoleFor returns the role of a person in groups: the first mapping that
// matches, else the default; false when neither gives one.
func (c *SSOConfig) RoleFor(groups []string) (string, bool) {
	for _, g := range c.GroupRoles {
		if slices.Contains(groups, g.Group) {
			return g.Role, true
		}
	}
	return c.DefaultRole, c.DefaultRole != ""
}

// SSOStore keeps organizations' single sign-on settings and finds users by
// the identity their provider vouches for.
type SSOStore interface {
	// SSOConfig returns org's single sign-on settings; ENotFound if none.
	SSOConfig(ctx context.Context, org int64) (*SSOConfig, error)
	// PutSSOConfig replaces org's single sign-on settings (validated).
	PutSSOConfig(ctx context.Context, c *SSOConfig) error
	// UserByOIDC returns org's user with this issuer and subject;
	// ENotFound if none.
	UserByOIDC(ctx context.Context, org int64, issuer, subject string) (*User, error)
	// LinkUserOIDC records the issuer and subject of a user of org who has
	// none yet; ENotFound if no such user, EConflict if the user has
	// another identity or another user has this one.
	LinkUserOIDC(ctx context.Context, org int64, userID, issuer, subject string) error
}
