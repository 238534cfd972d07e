package http

import (
	"fmt"
	"strings"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/dlp"
	"github.com/veritrail/veritrail/internal/canonjson"
)

// DLPPolicy is the decision.policy of outcomes taken by ingest DLP.
const DLPPolicy = "dlp"

// applyDLP scans the content of events under the organization's DLP
// settings, on the request's goroutine, before anything is stored:
//
//   - record: content is kept as sent; the findings are added to it
//     (content.dlp) and, when the event has no decision, it gets
//     {allowed, dlp, "found …"};
//   - redact: findings are masked ([REDACTED:detector]) and the event's
//     decision becomes redacted unless it already says redacted or blocked;
//   - block: the content is not stored at all, only content.dlp with the
//     findings; the decision becomes blocked (the log refused the data: the
//     action itself may have happened).
//
// A decision the sender gave and DLP replaced is kept in
// content.dlp.original_decision. Findings name the detector, the JSON path
// and a count, never the value. The outcome is deterministic, so a resent
// event is still recognized as the same event. While DLP is off it returns
// at once: ingest costs nothing extra.
func applyDLP(st *veritrail.Settings, events []*veritrail.Event) error {
	if !st.DLP.Enabled() {
		return nil
	}
	set := dlp.NewSet(st.DLP.Detectors...)
	for _, e := range events {
		if len(e.Content) == 0 || !set.MayMatchJSON(e.Content) {
			continue
		}
		v, err := dlp.Decode(e.Content)
		if err != nil {
			return err // content was validated by the decoder: not the client's fault
		}
		obj, ok := v.(map[string]any)
		if !ok {
			continue
		}
		var fs []dlp.Finding
		var kept map[string]any
		switch st.DLP.Mode {
		case veritrail.DLPRedact:
			var nv any
			nv, fs = set.RedactValue(obj, "")
			kept, _ = nv.(map[string]any)
		default:
			fs = set.ScanValue(obj, "")
			kept = obj
			if st.DLP.Mode == veritrail.DLPBlock {
				kept = map[string]any{}
			}
		}
		if len(fs) == 0 {
			continue
		}
		action := map[string]string{
			veritrail.DLPRecord: veritrail.DecisionAllowed,
			veritrail.DLPRedact: veritrail.DecisionRedacted,
			veritrail.DLPBlock:  veritrail.DecisionBlocked,
		}[st.DLP.Mode]
		note := map[string]any{"mode": st.DLP.Mode, "findings": fs}
		if stronger(action, e.Decision) {
			if e.Decision != nil {
				note["original_decision"] = e.Decision
			}
			e.Decision = &veritrail.Decision{Action: action, Policy: DLPPolicy, Reason: dlpReason(st.DLP.Mode, fs)}
		}
		kept["dlp"] = note
		b, err := dlp.Encode(kept)
		if err != nil {
			return err
		}
		canon, err := canonjson.Append(nil, b)
		if err != nil {
			return err
		}
		e.Content, e.ContentSalt, e.ContentDigest = canon, nil, ""
		e.Prepare() // new digest and index keys (decision)
	}
	return nil
}

// stronger reports whether action should replace the event's decision:
// blocked > redacted > allowed, and any decision beats none.
func stronger(action string, d *veritrail.Decision) bool {
	if d == nil {
		return true
	}
	rank := map[string]int{veritrail.DecisionAllowed: 1, veritrail.DecisionRedacted: 2, veritrail.DecisionBlocked: 3}
	return rank[action] > rank[d.Action]
}

func dlpReason(mode string, fs []dlp.Finding) string {
	counts := map[string]int{}
	var order []string
	for _, f := range fs {
		if counts[f.Detector] == 0 {
			order = append(order, f.Detector)
		}
		counts[f.Detector] += f.Count
	}
	parts := make([]string, len(order))
	for i, d := range order {
		parts[i] = fmt.Sprintf("%s (%d)", d, counts[d])
	}
	what := map[string]string{
		veritrail.DLPRecord: "content holds ",
		veritrail.DLPRedact: "masked in content: ",
		veritrail.DLPBlock:  "content withheld from the log, it held ",
	}[mode]
	return what + strings.Join(parts, ", ")
}
