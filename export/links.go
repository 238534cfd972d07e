package export

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	veritrail "github.com/veritrail/veritrail"
)

// Links makes and checks the download links of ready export jobs:
//
//	{base}/api/v1/exports/{id}/download?o=ORG&expires=UNIX&sig=HEX
//
// where sig is HMAC-SHA256 under Key over the organization, the job and
// the expiry. A link is its own credential (no token) until it expires,
// with the file. The HTTP API serves the path; the job runner e-mails
// links; both go through Links.
type Links struct {
	// Key signs links; without it no link verifies. Changing it
	// invalidates every link handed out.
	Key []byte
	// PublicURL is the externally visible base URL; when set it replaces
	// the base a link is asked for with.
	PublicURL string
}

func (l Links) sig(org int64, id string, expires int64) string {
	m := hmac.New(sha256.New, l.Key)
	fmt.Fprintf(m, "veritrail-export-download\n%d\n%s\n%d", org, id, expires)
	return hex.EncodeToString(m.Sum(nil))
}

// URL is the download link of a ready job (j.ExpiresAt set), on base
// unless PublicURL is set.
func (l Links) URL(base string, j *veritrail.ExportJob) string {
	if l.PublicURL != "" {
		base = strings.TrimRight(l.PublicURL, "/")
	}
	exp := j.ExpiresAt.Unix()
	return fmt.Sprintf("%s/api/v1/exports/%s/download?o=%d&expires=%d&sig=%s", base, url.PathEscape(j.ID), j.OrgID, exp, l.sig(j.OrgID, j.ID, exp))
}

// Check reports whether sig signs (org, id, expires), in constant time.
// Whether the link has expired is the caller's to check.
func (l Links) Check(org int64, id string, expires int64, sig string) bool {
	return len(l.Key) > 0 && hmac.Equal([]byte(sig), []byte(l.sig(org, id, expires)))
}
