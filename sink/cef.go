package sink

import (
	"cmp"
	"strconv"
	"strings"

	veritrail "github.com/veritrail/veritrail"
)

// CEF: ArcSight Common Event Format, one line per event, for SIEMs that
// read syslog (ArcSight, QRadar, Sentinel's CEF connector). CEF carries the
// envelope only: content belongs in the JSON formats.

var cefHeader = strings.NewReplacer(`\`, `\\`, `|`, `\|`, "\r", " ", "\n", " ")
var cefValue = strings.NewReplacer(`\`, `\\`, `=`, `\=`, "\r", `\r`, "\n", `\n`)

// cefSeverity is 0–10: routine 3, failures 5, redactions 5, blocks 7.
func cefSeverity(e *veritrail.Event) int {
	switch {
	case e.Decision != nil && e.Decision.Action == veritrail.DecisionBlocked:
		return 7
	case e.Outcome == veritrail.OutcomeFailure, e.Decision != nil && e.Decision.Action == veritrail.DecisionRedacted:
		return 5
	}
	return 3
}

// AppendCEF appends e as a CEF:0 line (no line end) of organization org.
func AppendCEF(dst []byte, org string, e *veritrail.Event) []byte {
	sum := summary(e)
	dst = append(dst, "CEF:0|Veritrail|Veritrail|1|"...)
	dst = append(dst, cefHeader.Replace(e.Type)...)
	dst = append(dst, '|')
	dst = append(dst, cefHeader.Replace(sum)...)
	dst = append(dst, '|')
	dst = strconv.AppendInt(dst, int64(cefSeverity(e)), 10)
	dst = append(dst, '|')
	first := true
	kv := func(k, v string) {
		if v == "" {
			return
		}
		if !first {
			dst = append(dst, ' ')
		}
		first = false
		dst = append(dst, k...)
		dst = append(dst, '=')
		dst = append(dst, cefValue.Replace(v)...)
	}
	kv("rt", strconv.FormatInt(e.Time.UnixMilli(), 10))
	kv("externalId", e.ID)
	kv("cn1Label", "seq")
	kv("cn1", strconv.FormatInt(e.Seq, 10))
	kv("cs1Label", "organization")
	kv("cs1", org)
	kv("cat", veritrail.Category(e.Type))
	kv("suid", e.Actor.ID)
	kv("suser", cmp.Or(e.Actor.Email, e.Actor.Name))
	kv("cs2Label", "actorType")
	kv("cs2", e.Actor.Type)
	if c := e.Context; c != nil {
		kv("src", c.IP)
		kv("requestClientApplication", c.UserAgent)
	}
	kv("outcome", e.Outcome)
	if e.Status != nil {
		kv("cn2Label", "status")
		kv("cn2", strconv.FormatInt(*e.Status, 10))
	}
	if e.DurationMS != nil {
		kv("cn3Label", "durationMs")
		kv("cn3", strconv.FormatInt(*e.DurationMS, 10))
	}
	if d := e.Decision; d != nil {
		kv("act", d.Action)
		kv("reason", d.Reason)
		if d.Policy != "" {
			kv("cs3Label", "policy")
			kv("cs3", d.Policy)
		}
	}
	if e.AgentID != "" {
		kv("cs4Label", "agentId")
		kv("cs4", e.AgentID)
	}
	if e.TaskID != "" {
		kv("cs5Label", "taskId")
		kv("cs5", e.TaskID)
	}
	if e.Tool != "" {
		kv("cs6Label", "tool")
		kv("cs6", e.Tool)
	}
	kv("destinationServiceName", e.Connector)
	if t := e.Target; t != nil {
		if t.Type != "" || t.ID != "" {
			kv("flexString1Label", "target")
			kv("flexString1", strings.Trim(t.Type+":"+t.ID, ":"))
		}
		if t.Name != "" {
			kv("flexString2Label", "targetName")
			kv("flexString2", t.Name)
		}
	}
	kv("msg", sum)
	return dst
}
