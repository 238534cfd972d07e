package sink

import (
	"strconv"

	"github.com/veritrail/veritrail/internal/canonjson"
)

// appendJSON appends r as encoding/json would write it (field order and
// omitempty of the struct tags, HTML not escaped; strings as
// canonjson.AppendString writes them, so U+2028 and U+2029 unescaped), without
// reflection:
// forwarding in OCSF writes one record per event. TestOCSFEncoderMatchesJSON
// holds the two to the same bytes.
func (r *ocsfRecord) appendJSON(dst []byte) []byte {
	w := jsonObj{dst: append(dst, '{'), first: true}
	w.int("activity_id", int64(r.ActivityID))
	w.str("activity_name", r.ActivityName)
	w.int("category_uid", int64(r.CategoryUID))
	w.str("category_name", r.CategoryName)
	w.int("class_uid", int64(r.ClassUID))
	w.str("class_name", r.ClassName)
	w.int("type_uid", int64(r.TypeUID))
	w.str("type_name", r.TypeName)
	w.int("severity_id", int64(r.SeverityID))
	w.str("severity", r.Severity)
	w.int("status_id", int64(r.StatusID))
	w.str("status", r.Status)
	w.strOmit("status_code", r.StatusCode)
	w.strOmit("status_detail", r.StatusDetail)
	w.int("time", r.Time)
	if r.Duration != nil {
		w.int("duration", *r.Duration)
	}
	w.str("message", r.Message)

	m := &r.Metadata
	w.open("metadata")
	w.str("version", m.Version)
	w.str("uid", m.UID)
	w.int("sequence", m.Sequence)
	w.str("event_code", m.EventCode)
	w.str("original_time", m.OriginalTime)
	w.int("logged_time", m.LoggedTime)
	w.str("tenant_uid", m.TenantUID)
	w.strOmit("correlation_uid", m.CorrelationUID)
	w.open("product")
	w.str("name", m.Product.Name)
	w.str("vendor_name", m.Product.VendorName)
	w.close()
	if len(m.Profiles) > 0 {
		w.key("profiles")
		w.dst = append(w.dst, '[')
		for i, p := range m.Profiles {
			if i > 0 {
				w.dst = append(w.dst, ',')
			}
			w.dst = canonjson.AppendString(w.dst, p)
		}
		w.dst = append(w.dst, ']')
	}
	w.close()

	a := &r.Actor
	w.open("actor")
	if a.User != nil {
		w.user("user", a.User)
	}
	if a.Session != nil {
		w.open("session")
		w.str("uid", a.Session.UID)
		w.close()
	}
	w.strOmit("app_name", a.AppName)
	if len(a.Authorizations) > 0 {
		w.key("authorizations")
		w.dst = append(w.dst, '[')
		for i := range a.Authorizations {
			if i > 0 {
				w.dst = append(w.dst, ',')
			}
			z := &a.Authorizations[i]
			w.dst = append(w.dst, '{')
			w.first = true
			w.str("decision", z.Decision)
			if z.Policy != nil {
				w.open("policy")
				w.strOmit("name", z.Policy.Name)
				w.strOmit("desc", z.Policy.Desc)
				w.close()
			}
			w.dst = append(w.dst, '}')
			w.first = false
		}
		w.dst = append(w.dst, ']')
	}
	w.close()

	if r.User != nil {
		w.user("user", r.User)
	}
	w.open("src_endpoint")
	w.strOmit("ip", r.SrcEndpoint.IP)
	w.close()
	if h := r.HTTPRequest; h != nil {
		w.open("http_request")
		w.strOmit("user_agent", h.UserAgent)
		w.strOmit("uid", h.UID)
		w.close()
	}
	if api := r.API; api != nil {
		w.open("api")
		w.str("operation", api.Operation)
		if api.Service != nil {
			w.open("service")
			w.str("name", api.Service.Name)
			w.close()
		}
		if api.Request != nil {
			w.open("request")
			w.str("uid", api.Request.UID)
			w.close()
		}
		w.close()
	}
	if len(r.Resources) > 0 {
		w.key("resources")
		w.dst = append(w.dst, '[')
		for i := range r.Resources {
			if i > 0 {
				w.dst = append(w.dst, ',')
			}
			w.dst = append(w.dst, '{')
			w.first = true
			w.resourceFields(&r.Resources[i])
			w.dst = append(w.dst, '}')
			w.first = false
		}
		w.dst = append(w.dst, ']')
	}
	if r.Entity != nil {
		w.open("entity")
		w.resourceFields(r.Entity)
		w.close()
	}
	if r.Group != nil {
		w.open("group")
		w.resourceFields(r.Group)
		w.close()
	}
	if r.ActionID != 0 {
		w.int("action_id", int64(r.ActionID))
	}
	w.strOmit("action", r.Action)
	if r.DispositionID != 0 {
		w.int("disposition_id", int64(r.DispositionID))
	}
	w.strOmit("disposition", r.Disposition)

	u := &r.Unmapped
	w.open("unmapped")
	w.strOmit("agent_id", u.AgentID)
	w.strOmit("task_id", u.TaskID)
	w.strOmit("session_id", u.SessionID)
	w.strOmit("connector", u.Connector)
	w.strOmit("tool", u.Tool)
	w.strOmit("team_id", u.TeamID)
	w.str("actor_type", u.ActorType)
	w.strOmit("content_digest", u.ContentDigest)
	w.close()
	return append(w.dst, '}')
}

// jsonObj writes the members of nested JSON objects.
type jsonObj struct {
	dst   []byte
	first bool // the next member is its object's first
}

func (w *jsonObj) key(k string) {
	if w.first {
		w.first = false
	} else {
		w.dst = append(w.dst, ',')
	}
	w.dst = append(w.dst, '"')
	w.dst = append(w.dst, k...)
	w.dst = append(w.dst, '"', ':')
}

func (w *jsonObj) str(k, v string) {
	w.key(k)
	w.dst = canonjson.AppendString(w.dst, v)
}

func (w *jsonObj) strOmit(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *jsonObj) int(k string, v int64) {
	w.key(k)
	w.dst = strconv.AppendInt(w.dst, v, 10)
}

func (w *jsonObj) open(k string) {
	w.key(k)
	w.dst = append(w.dst, '{')
	w.first = true
}

func (w *jsonObj) close() {
	w.dst = append(w.dst, '}')
	w.first = false
}

func (w *jsonObj) user(k string, u *ocsfUser) {
	w.open(k)
	w.strOmit("uid", u.UID)
	w.strOmit("email_addr", u.EmailAddr)
	w.strOmit("name", u.Name)
	w.strOmit("type", u.Type)
	if u.TypeID != 0 {
		w.int("type_id", int64(u.TypeID))
	}
	w.close()
}

func (w *jsonObj) resourceFields(res *ocsfResource) {
	w.strOmit("uid", res.UID)
	w.strOmit("type", res.Type)
	w.strOmit("name", res.Name)
}
