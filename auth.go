package veritrail

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Roles (docs/ACCESS.md says what each may do).
const (
	RoleOwner    = "owner"
	RoleAdmin    = "admin"
	RoleSecurity = "security" // reads content
	RoleAuditor  = "auditor"  // metadata only
	RoleIngest   = "ingest"   // write only
)

// Scopes narrow what a token may do within its role.
const (
	ScopeEventsWrite   = "events:write"
	ScopeAuditLogsRead = "auditlogs:read"
	ScopeAIRead        = "aiinteractionlogs:read"
	ScopeContentRead   = "content:read"
	ScopeExports       = "exports"
	ScopeAdmin         = "admin"
)

// AllScopes lists every scope.
var AllScopes = []string{ScopeEventsWrite, ScopeAuditLogsRead, ScopeAIRead, ScopeContentRead, ScopeExports, ScopeAdmin}

// roleScopes is the one table of who may do what: the scopes each role
// holds. A token holds the scopes of its role, narrowed to the scopes it was
// created with, if any.
var roleScopes = map[string][]string{
	RoleOwner:    AllScopes,
	RoleAdmin:    {ScopeAuditLogsRead, ScopeAIRead, ScopeExports, ScopeAdmin},
	RoleSecurity: {ScopeAuditLogsRead, ScopeAIRead, ScopeContentRead, ScopeExports},
	RoleAuditor:  {ScopeAuditLogsRead, ScopeAIRead, ScopeExports},
	RoleIngest:   {ScopeEventsWrite},
}

// ValidRole reports whether r is a known role.
func ValidRole(r string) bool { _, ok := roleScopes[r]; return ok }

// Roles lists the roles.
var Roles = []string{RoleOwner, RoleAdmin, RoleSecurity, RoleAuditor, RoleIngest}

// ValidScope reports whether s is a known scope.
func ValidScope(s string) bool { return slices.Contains(AllScopes, s) }

// EffectiveScopes returns the scopes a token of role with the requested
// scopes holds: the role's scopes, narrowed to requested when non-empty.
func EffectiveScopes(role string, requested []string) []string {
	base := roleScopes[role]
	if len(requested) == 0 {
		return slices.Clone(base)
	}
	var out []string
	for _, s := range base {
		if slices.Contains(requested, s) {
			out = append(out, s)
		}
	}
	return out
}

// TokenRequest is a token to create, as the API (POST /tokens) and the
// command line (veritrail token create) receive it.
type TokenRequest struct {
	Name      string
	Role      string
	Scopes    []string // narrow the role; empty: the role's scopes
	ExpiresIn string   // a Go duration such as 720h; empty: never expires
}

// maxTokenName bounds a token's name, in bytes.
const maxTokenName = 200

// Check is the one validation of a token request, for the API and the
// command line alike, so both refuse the same requests with the same
// words. It returns when the token expires (nil: never), counted from now.
// Its error is an EInvalid *Error whose Field names the offending field:
// role, scopes, name or expires_in. Whether the caller may grant the role
// (CanGrant) is the caller's to check.
func (r *TokenRequest) Check(now time.Time) (expires *time.Time, err error) {
	switch {
	case r.Role == "":
		return nil, fieldError("role", "required; one of %s", strings.Join(Roles, ", "))
	case !ValidRole(r.Role):
		return nil, fieldError("role", "%q is not a role; use one of %s", r.Role, strings.Join(Roles, ", "))
	}
	for _, sc := range r.Scopes {
		if !ValidScope(sc) {
			return nil, fieldError("scopes", "unknown scope %q; scopes are %s", sc, strings.Join(AllScopes, ", "))
		}
		if !slices.Contains(roleScopes[r.Role], sc) {
			return nil, fieldError("scopes", "the %s role does not hold %s; it holds %s (roles that hold %s: %s)",
				r.Role, sc, strings.Join(roleScopes[r.Role], ", "), sc, strings.Join(rolesHolding(sc), ", "))
		}
	}
	if len(r.Name) > maxTokenName {
		return nil, fieldError("name", "at most %d bytes, got %d", maxTokenName, len(r.Name))
	}
	if r.ExpiresIn == "" {
		return nil, nil
	}
	d, err := time.ParseDuration(r.ExpiresIn)
	if err != nil || d <= 0 {
		return nil, fieldError("expires_in", "a positive duration such as 720h (30 days) or 24h, got %q; leave it out for a token that never expires", r.ExpiresIn)
	}
	t := now.Add(d).UTC()
	return &t, nil
}

// rolesHolding lists the roles that hold scope.
func rolesHolding(scope string) []string {
	var out []string
	for _, r := range Roles {
		if slices.Contains(roleScopes[r], scope) {
			out = append(out, r)
		}
	}
	return out
}

// fieldError is an EInvalid error about one field of a request.
func fieldError(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Message: "field " + field + ": " + fmt.Sprintf(format, args...), Index: -1, Field: field}
}

// Org is an organization: the unit of isolation. Every event, token, user
// and setting belongs to exactly one.
type Org struct {
	ID        int64
	Name      string
	CreatedAt time.Time
}

// Token is an API token as stored: never the secret itself.
type Token struct {
	ID         string
	OrgID      int64
	Name       string
	Role       string
	Scopes     []string // as requested at creation; empty means the role's
	Lookup     string   // public part of SHA-256(secret), used to find the row
	Hash       []byte   // SHA-256(secret), compared in constant time
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// ActiveAt reports whether the token may be used at now: not revoked, not
// expired.
func (t *Token) ActiveAt(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// User is a person of an organization (the console signs users in through
// OIDC; the subject and issuer are kept for that).
type User struct {
	ID          string
	OrgID       int64
	Email       string
	Name        string
	Role        string
	OIDCSubject string
	OIDCIssuer  string
	CreatedAt   time.Time
	DisabledAt  *time.Time
}

// Team is a group within an organization.
type Team struct {
	ID        string
	OrgID     int64
	Name      string
	CreatedAt time.Time
}

// NewID returns a random identifier with a prefix ("usr", "team", …).
func NewID(prefix string) string {
	var b [9]byte
	rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// CanGrant reports whether a principal of role by may create a token or
// user of role role: owners any; admins admin, auditor and ingest (never
// owner, nor content access they lack); others none.
func CanGrant(by, role string) bool {
	switch by {
	case RoleOwner:
		return ValidRole(role)
	case RoleAdmin:
		return role == RoleAdmin || role == RoleAuditor || role == RoleIngest
	}
	return false
}

// Principal is who is calling: a verified token of an organization, or a
// console session (of a user, or opened with a token).
type Principal struct {
	OrgID     int64
	OrgName   string
	TokenID   string
	TokenName string
	Role      string
	Scopes    []string // effective

	// SessionID is set for a console session; User for a session of a
	// user (e-mail link or single sign-on), whom its actions are
	// attributed to.
	SessionID string
	User      *User
}

// Can reports whether the principal holds scope.
func (p *Principal) Can(scope string) bool { return p != nil && slices.Contains(p.Scopes, scope) }

// TokenPrefix marks Veritrail API tokens so secret scanners can find them.
const TokenPrefix = "vt_"

// NewTokenSecret returns a new random token that names no organization:
// "vt_" and 32 random bytes (256 bits) in URL-safe base64. Tokens made
// before tokens named their organization have this form; the server now
// makes tokens with NewOrgTokenSecret.
func NewTokenSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// orgTokenBytes is the length of what an organization's token encodes:
// the organization's id (8 bytes) and 32 random bytes.
const orgTokenBytes = 8 + 32

// NewOrgTokenSecret returns a new token of organization org: "vt_" and,
// in URL-safe base64 (54 characters), org's id as 8 big-endian bytes
// followed by 32 random bytes (256 bits). The id is no secret; it lets a
// store that spreads organizations over several servers (PostgreSQL with
// Citus) find the token on the one server that holds its organization.
func NewOrgTokenSecret(org int64) string {
	var b [orgTokenBytes]byte
	binary.BigEndian.PutUint64(b[:8], uint64(org))
	rand.Read(b[8:])
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// tokenOrg returns the organization a token or session secret names
// (NewOrgTokenSecret, NewSessionSecret), 0 for a secret that names none.
func tokenOrg(secret string) int64 {
	rest, ok := strings.CutPrefix(secret, TokenPrefix)
	if !ok {
		rest, ok = strings.CutPrefix(secret, SessionPrefix)
	}
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(orgTokenBytes) {
		return 0
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return 0
	}
	org := int64(binary.BigEndian.Uint64(b[:8]))
	return max(org, 0)
}

// HashToken returns the lookup key and the hash under which a token secret
// is stored. Tokens carry 256 random bits, so a fast hash is enough: there is
// nothing to brute-force. The lookup key is the hash's first 8 bytes in
// hex, after "<org>/" when the secret names its organization (LookupOrg).
func HashToken(secret string) (lookup string, hash []byte) {
	sum := sha256.Sum256([]byte(secret))
	lookup = hex.EncodeToString(sum[:8])
	if org := tokenOrg(secret); org > 0 {
		lookup = strconv.FormatInt(org, 10) + "/" + lookup
	}
	return lookup, sum[:]
}

// LookupOrg returns the organization a token's lookup key names, and
// false for a key that names none (a token made before tokens named their
// organization, or one an operator supplied).
func LookupOrg(lookup string) (int64, bool) {
	org, _, ok := strings.Cut(lookup, "/")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(org, 10, 64)
	return id, err == nil && id > 0
}

// TokenMatches compares a presented secret with a stored hash in constant time.
func TokenMatches(secret string, hash []byte) bool {
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], hash) == 1
}

// NewTokenID returns a public identifier for a token row.
func NewTokenID() string { return NewID("tok") }

// ValidOrgName reports whether name can name an organization: 1 to 64
// characters from [a-z0-9-], starting with a letter or digit.
func ValidOrgName(name string) bool {
	if len(name) == 0 || len(name) > 64 || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
