package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"slices"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// ServerSource reads the log of a token's organization through a server's
// API (veritrail verify --server): its latest checkpoint and the history
// up to it, every event up to it in seq order, content where the token may
// read it, the removals, and the tiles of removed envelopes.
type ServerSource struct {
	base, token string
	client      *http.Client
	org         string
	seesContent bool
	latestNote  []byte
	latest      *tlog.Checkpoint // unverified: Check verifies it
}

// NewServerSource connects to the server at base with token.
func NewServerSource(ctx context.Context, base, token string) (*ServerSource, error) {
	s := &ServerSource{base: strings.TrimRight(base, "/"), token: token, client: &http.Client{Timeout: 60 * time.Second}}
	var me struct {
		Org struct {
			Name string `json:"name"`
		} `json:"organization"`
		Scopes []string `json:"scopes"`
	}
	b, err := s.get(ctx, "/api/v1/me")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &me); err != nil {
		return nil, fmt.Errorf("GET /api/v1/me: %w (is %s a Veritrail server?)", err, s.base)
	}
	s.org = me.Org.Name
	s.seesContent = slices.Contains(me.Scopes, veritrail.ScopeContentRead)
	if s.latestNote, err = s.get(ctx, "/api/v1/log/checkpoint"); err != nil {
		return nil, err
	}
	s.latest, _ = tlog.ParseUnverified(s.latestNote) // an unreadable one fails its signature check
	return s, nil
}

func (s *ServerSource) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("is the server running at %s? %w", s.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// Key returns the verifier key the server serves: to be compared with the
// one obtained from its operator earlier, not trusted.
func (s *ServerSource) Key(ctx context.Context) (string, error) {
	k, err := s.get(ctx, "/api/v1/log/key")
	return strings.TrimSpace(string(k)), err
}

// Logs implements Source: the token's organization.
func (s *ServerSource) Logs(context.Context) ([]LogRef, error) {
	ref := LogRef{Org: s.org}
	if s.latest != nil {
		ref.Origin = s.latest.Origin
	}
	return []LogRef{ref}, nil
}

// Open implements Source.
func (s *ServerSource) Open(context.Context, LogRef) (LogReader, error) { return s, nil }

// Info implements LogReader: the log up to the latest checkpoint, and the
// history of checkpoints up to it.
func (s *ServerSource) Info(ctx context.Context) (*Info, error) {
	info := &Info{Growing: true, ContentHidden: !s.seesContent, Where: "through " + s.base}
	if s.latest == nil {
		info.Checkpoints = [][]byte{s.latestNote}
		return info, nil
	}
	info.Size = int64(s.latest.Size)
	haveLatest := false
	for from := int64(0); ; {
		b, err := s.get(ctx, fmt.Sprintf("/api/v1/log/checkpoints?from_size=%d&limit=1000", from))
		if err != nil {
			return nil, err
		}
		var page struct {
			Data []struct {
				Size       int64  `json:"size"`
				Checkpoint string `json:"checkpoint"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, err
		}
		for _, c := range page.Data {
			if c.Size <= info.Size {
				info.Checkpoints = append(info.Checkpoints, []byte(c.Checkpoint))
				haveLatest = haveLatest || c.Size == info.Size
			}
		}
		if len(page.Data) < 1000 {
			break
		}
		from = page.Data[len(page.Data)-1].Size + 1
	}
	if !haveLatest {
		// The events are checked up to the latest checkpoint: its root must
		// be compared too, whatever the history holds.
		info.Checkpoints = append(info.Checkpoints, s.latestNote)
	}
	return info, nil
}

// Removals implements LogReader.
func (s *ServerSource) Removals(ctx context.Context) ([]*veritrail.Removal, error) {
	b, err := s.get(ctx, "/api/v1/log/removals")
	if err != nil {
		return nil, err
	}
	var page struct {
		Data []struct {
			From, To     int64
			What, Reason string
			Record       string
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		return nil, err
	}
	var out []*veritrail.Removal
	for _, r := range page.Data {
		out = append(out, &veritrail.Removal{From: r.From, To: r.To, What: r.What, Reason: r.Reason, Record: r.Record})
	}
	return out, nil
}

// LeafTile implements LogReader.
func (s *ServerSource) LeafTile(ctx context.Context, index int64) ([]byte, error) {
	return s.get(ctx, fmt.Sprintf("/api/v1/log/tile/0/%d", index))
}

// Events implements LogReader: the events in seq order from the first,
// each positioned by its envelope's seq (Event.Seq is -1); the range is
// not applied, and Check stops reading past the latest checkpoint.
func (s *ServerSource) Events(ctx context.Context, _, _ int64, fn func(*Event) error) error {
	cursor := ""
	for {
		path := "/api/v1/events?order=seq&limit=1000"
		if cursor != "" {
			path += "&cursor=" + neturl.QueryEscape(cursor)
		}
		b, err := s.get(ctx, path)
		if err != nil {
			return err
		}
		var page struct {
			Data []json.RawMessage `json:"data"`
			Next string            `json:"next_cursor"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return err
		}
		for _, raw := range page.Data {
			ev := &Event{Seq: -1}
			if ev.Envelope, ev.Content, ev.Salt, err = SplitEvent(raw); err != nil {
				ev = &Event{Seq: -1, Unreadable: err.Error()}
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
		if len(page.Data) == 0 || page.Next == "" {
			return nil // the rest, if any is missing, is reported as such
		}
		cursor = page.Next
	}
}

// SplitEvent takes an event as the API shows it apart: the exact envelope
// bytes, and the content and salt the server spliced in before its end.
func SplitEvent(raw []byte) (env, content, salt []byte, err error) {
	i := bytes.Index(raw, []byte(`,"content":`))
	if i < 0 {
		return raw, nil, nil, nil
	}
	env = append(append([]byte(nil), raw[:i]...), '}')
	dec := json.NewDecoder(bytes.NewReader(raw[i+len(`,"content":`):]))
	var c json.RawMessage
	if err := dec.Decode(&c); err != nil {
		return nil, nil, nil, fmt.Errorf("an event's content is unreadable: %w", err)
	}
	rest := raw[i+len(`,"content":`)+int(dec.InputOffset()):]
	const sk = `,"content_salt":"`
	if !bytes.HasPrefix(rest, []byte(sk)) {
		return nil, nil, nil, errors.New("an event has content but no content_salt")
	}
	rest = rest[len(sk):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, nil, nil, errors.New("an event's content_salt is unterminated")
	}
	if salt, err = base64.StdEncoding.DecodeString(string(rest[:end])); err != nil {
		return nil, nil, nil, fmt.Errorf("an event's content_salt: %w", err)
	}
	return env, c, salt, nil
}
