package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	vhttp "github.com/veritrail/veritrail/http"
)

// settableClock is a server clock a test moves.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settableClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// pollRead is what a test's reader did: how many reads, and the seqs
// they returned.
type pollRead struct {
	reads int
	seqs  map[int64]bool
}

// drain reads path from cursor (the start when "") until an empty page,
// as Elastic's httpjson input and many scripts do, and returns the cursor
// to poll from next; it fails when that takes more than max reads.
func (e *env) drain(path, cursor, token string, max int, got *pollRead) string {
	e.t.Helper()
	next := path
	if cursor != "" {
		next += "&cursor=" + cursor
	}
	for range max {
		_, seqs, cursor := e.readPage(next, token)
		got.reads++
		for _, s := range seqs {
			got.seqs[s] = true
		}
		if len(seqs) == 0 {
			return cursor
		}
		next = path + "&cursor=" + cursor
	}
	e.t.Fatalf("%s: not empty after %d reads: a drain-until-empty poller never stops", path, max)
	return ""
}

// tokenID is the id of a token, as GET /api/v1/me says.
func (e *env) tokenID(token string) string {
	e.t.Helper()
	r := e.do("GET", "/api/v1/me", token, nil)
	return r.json(e.t)["token"].(map[string]any)["id"].(string)
}

// accounted sums the reads the audit.query records of a token account
// for, read from the store itself (not through the API, which would
// record more): a read's own record counts one, plus the reads it carries
// ("repeated"); a record of an idle reader's reads only those. It also
// returns the seqs the records say were returned, and the records.
func (e *env) accounted(tokenID string) (reads int, seqs map[int64]bool, records []map[string]any) {
	e.t.Helper()
	q, err := veritrail.ParseQuery(url.Values{"type": {"audit.query"}, "actor_id": {tokenID}, "order": {"asc"}, "limit": {"1000"}}, true)
	if err != nil {
		e.t.Fatal(err)
	}
	page, err := e.store.Query(context.Background(), e.org.ID, q)
	if err != nil {
		e.t.Fatal(err)
	}
	seqs = map[int64]bool{}
	for _, ev := range page.Events {
		var rec struct{ Details map[string]any } // a record's details are its content
		if err := json.Unmarshal(ev.Content, &rec.Details); err != nil {
			e.t.Fatal(err)
		}
		records = append(records, rec.Details)
		cover := func(d map[string]any) {
			if f, ok := d["first_seq"].(float64); ok {
				for s := int64(f); s <= int64(d["last_seq"].(float64)); s++ {
					seqs[s] = true
				}
			}
		}
		if _, ok := rec.Details["results"]; ok {
			reads++
			cover(rec.Details)
		}
		if rep, ok := rec.Details["repeated"].(map[string]any); ok {
			reads += int(rep["reads"].(float64))
			cover(rep)
		}
	}
	return reads, seqs, records
}

// TestQuietPolling: a poller that reads until an empty page stops, with
// or without content, and every one of its reads is still in the log —
// its first read of each window as it happens, the others counted in the
// next record or, for a reader gone quiet, at shutdown.
func TestQuietPolling(t *testing.T) {
	clock := &settableClock{t: time.Now().UTC()}
	e := newEnvConfig(t, vhttp.Config{Now: clock.now, PollRecordInterval: time.Minute})
	var batch strings.Builder
	for i := range 45 {
		content := ""
		if i%3 == 0 {
			content = fmt.Sprintf(`,"content":{"note":"n%d"}`, i)
		}
		fmt.Fprintf(&batch, `{"id":"p%d","type":"poll.test","actor":{"type":"user","id":"u"}%s}`+"\n", i, content)
	}
	if r := e.post(batch.String(), "Content-Type", "application/x-ndjson"); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	auditor := e.token(e.org, veritrail.RoleAuditor, nil, nil)
	auditorID, ownerID := e.tokenID(auditor), e.tokenID(e.owner)
	const path = "/api/v1/events?order=seq&limit=10"

	// The auditor (no content): pages of ten, then the record of its
	// first read, then nothing.
	aud := pollRead{seqs: map[int64]bool{}}
	cur := e.drain(path, "", auditor, 20, &aud)
	if aud.reads < 6 || len(aud.seqs) < 46 {
		t.Fatalf("auditor: %d reads returned %d events, want the 45 and a record", aud.reads, len(aud.seqs))
	}
	// Polling on within the window stays quiet: one empty page each.
	for range 5 {
		cur = e.drain(path, cur, auditor, 1, &aud)
	}

	// The owner (content): each page with content is recorded alone, and
	// the poll still ends.
	own := pollRead{seqs: map[int64]bool{}}
	e.drain(path, "", e.owner, 40, &own)
	_, _, recs := e.accounted(ownerID)
	alone := 0
	for _, d := range recs {
		if _, ok := d["repeated"]; !ok && d["results"].(float64) > 0 {
			alone++
		}
	}
	if alone < 5 { // the five pages holding the demo's content
		t.Errorf("owner: %d reads recorded alone, want at least the 5 pages with content: %v", alone, recs)
	}

	// A new window: the reader's next read is recorded, with the reads
	// coalesced since its last record.
	clock.add(61 * time.Second)
	before, _, _ := e.accounted(auditorID)
	e.drain(path, cur, auditor, 3, &aud)
	after, _, recs := e.accounted(auditorID)
	last := recs[len(recs)-1]
	if rep, ok := last["repeated"].(map[string]any); !ok || after <= before || rep["reads"].(float64) < 5 {
		t.Errorf("after the window: %d reads accounted (was %d); last record %v, want it to carry the window's reads", after, before, last)
	}

	// Shutdown writes what is still owed: every read of both readers is
	// in the log, with every seq they were returned.
	e.shutdown()
	for _, rd := range []struct {
		name, id string
		read     pollRead
	}{{"auditor", auditorID, aud}, {"owner", ownerID, own}} {
		n, seqs, _ := e.accounted(rd.id)
		if n != rd.read.reads {
			t.Errorf("%s: %d reads accounted for, made %d", rd.name, n, rd.read.reads)
		}
		for s := range rd.read.seqs {
			if !seqs[s] {
				t.Errorf("%s: seq %d was read but no record covers it", rd.name, s)
			}
		}
	}
}
