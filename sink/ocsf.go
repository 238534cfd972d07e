package sink

import (
	"cmp"
	"strconv"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// OCSF: events as Open Cybersecurity Schema Framework 1.6.0 records, for
// AWS Security Lake and OCSF-native SIEMs. The class and activity follow
// the event type (veritrail.Classify, which the class filter of queries
// uses too): sign-ins are Authentication (3002), account changes Account
// Change (3001), team changes Group Management (3006), role changes User
// Access Management (3005), changes to Veritrail's own settings, tokens
// and sinks Entity Management (3004), and everything else, agent tool
// calls and AI interactions first, API Activity (6003). Events with a
// governance decision carry the security_control profile.
// docs/FORWARDING.md has the table.

// OCSFVersion is the schema version of the records.
const OCSFVersion = "1.6.0"

type ocsfProduct struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
}

type ocsfMetadata struct {
	Version        string      `json:"version"`
	UID            string      `json:"uid"`
	Sequence       int64       `json:"sequence"`
	EventCode      string      `json:"event_code"`
	OriginalTime   string      `json:"original_time"`
	LoggedTime     int64       `json:"logged_time"`
	TenantUID      string      `json:"tenant_uid"`
	CorrelationUID string      `json:"correlation_uid,omitempty"`
	Product        ocsfProduct `json:"product"`
	Profiles       []string    `json:"profiles,omitempty"`
}

type ocsfUser struct {
	UID       string `json:"uid,omitempty"`
	EmailAddr string `json:"email_addr,omitempty"`
	Name      string `json:"name,omitempty"`
	Type      string `json:"type,omitempty"`
	TypeID    int    `json:"type_id,omitempty"`
}

type ocsfPolicy struct {
	Name string `json:"name,omitempty"`
	Desc string `json:"desc,omitempty"`
}

type ocsfAuthorization struct {
	Decision string      `json:"decision"`
	Policy   *ocsfPolicy `json:"policy,omitempty"`
}

type ocsfActor struct {
	User           *ocsfUser           `json:"user,omitempty"`
	Session        *ocsfUID            `json:"session,omitempty"`
	AppName        string              `json:"app_name,omitempty"`
	Authorizations []ocsfAuthorization `json:"authorizations,omitempty"`
}

type ocsfUID struct {
	UID string `json:"uid"`
}

type ocsfEndpoint struct {
	IP string `json:"ip,omitempty"`
}

type ocsfHTTPRequest struct {
	UserAgent string `json:"user_agent,omitempty"`
	UID       string `json:"uid,omitempty"`
}

type ocsfService struct {
	Name string `json:"name"`
}

type ocsfAPI struct {
	Operation string       `json:"operation"`
	Service   *ocsfService `json:"service,omitempty"`
	Request   *ocsfUID     `json:"request,omitempty"`
}

type ocsfResource struct {
	UID  string `json:"uid,omitempty"`
	Type string `json:"type,omitempty"`
	Name string `json:"name,omitempty"`
}

type ocsfUnmapped struct {
	AgentID       string `json:"agent_id,omitempty"`
	TaskID        string `json:"task_id,omitempty"`
	SessionID     string `json:"session_id,omitempty"`
	Connector     string `json:"connector,omitempty"`
	Tool          string `json:"tool,omitempty"`
	TeamID        string `json:"team_id,omitempty"`
	ActorType     string `json:"actor_type"`
	ContentDigest string `json:"content_digest,omitempty"`
	// content is appended by AppendOCSF after the encoding: it must stay
	// the last member of the last member.
}

type ocsfRecord struct {
	ActivityID   int    `json:"activity_id"`
	ActivityName string `json:"activity_name"`
	CategoryUID  int    `json:"category_uid"`
	CategoryName string `json:"category_name"`
	ClassUID     int    `json:"class_uid"`
	ClassName    string `json:"class_name"`
	TypeUID      int    `json:"type_uid"`
	TypeName     string `json:"type_name"`
	SeverityID   int    `json:"severity_id"`
	Severity     string `json:"severity"`
	StatusID     int    `json:"status_id"`
	Status       string `json:"status"`
	StatusCode   string `json:"status_code,omitempty"`
	StatusDetail string `json:"status_detail,omitempty"`
	Time         int64  `json:"time"`
	Duration     *int64 `json:"duration,omitempty"`
	Message      string `json:"message"`

	Metadata    ocsfMetadata     `json:"metadata"`
	Actor       ocsfActor        `json:"actor"`
	User        *ocsfUser        `json:"user,omitempty"` // Authentication, Account Change: whose account
	SrcEndpoint ocsfEndpoint     `json:"src_endpoint"`   //
	HTTPRequest *ocsfHTTPRequest `json:"http_request,omitempty"`
	API         *ocsfAPI         `json:"api,omitempty"`       // API Activity
	Resources   []ocsfResource   `json:"resources,omitempty"` // API Activity
	Entity      *ocsfResource    `json:"entity,omitempty"`    // Entity Management
	Group       *ocsfResource    `json:"group,omitempty"`     // Group Management

	// security_control profile
	ActionID      int    `json:"action_id,omitempty"`
	Action        string `json:"action,omitempty"`
	DispositionID int    `json:"disposition_id,omitempty"`
	Disposition   string `json:"disposition,omitempty"`

	Unmapped ocsfUnmapped `json:"unmapped"`
}

// activities by class: id → name.
var activityNames = map[int]map[int]string{
	veritrail.ClassAuthentication:   {1: "Logon", 2: "Logoff", 99: "Other"},
	veritrail.ClassAccountChange:    {1: "Create", 2: "Enable", 3: "Password Change", 4: "Password Reset", 5: "Disable", 6: "Delete", 9: "Lock", 10: "MFA Factor Enable", 11: "MFA Factor Disable", 99: "Other"},
	veritrail.ClassEntityManagement: {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"},
	veritrail.ClassUserAccess:       {1: "Assign Privileges", 2: "Revoke Privileges", 99: "Other"},
	veritrail.ClassGroupManagement:  {1: "Assign Privileges", 2: "Revoke Privileges", 3: "Add User", 4: "Remove User", 5: "Delete", 6: "Create", 99: "Other"},
	veritrail.ClassAPIActivity:      {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"},
}

func ocsfActorType(t string) (int, string) {
	switch t {
	case veritrail.ActorUser:
		return 1, "User"
	case veritrail.ActorSystem:
		return 3, "System"
	case veritrail.ActorAgent:
		return 99, "Agent"
	case veritrail.ActorService:
		return 99, "Service"
	case veritrail.ActorAPIKey:
		return 99, "API Key"
	}
	return 99, t
}

// AppendOCSF appends e as an OCSF record of organization org.
func AppendOCSF(dst []byte, org string, e *veritrail.Event) []byte {
	r := newOCSFRecord(org, e)
	dst = r.appendJSON(dst)
	if len(e.Content) == 0 {
		return dst
	}
	// The content goes in last, spliced in as it is stored (canonical,
	// compact JSON). unmapped is the record's last member and content its
	// last, so the record ends "}}", after actor_type at least.
	dst = dst[:len(dst)-2]
	dst = append(dst, `,"content":`...)
	dst = append(dst, e.Content...)
	return append(dst, "}}"...)
}

// newOCSFRecord maps e to its OCSF record (without content).
func newOCSFRecord(org string, e *veritrail.Event) *ocsfRecord {
	class, act := veritrail.Classify(e.Type, e.Tool)
	cat, catName := 3, "Identity & Access Management"
	if class == veritrail.ClassAPIActivity {
		cat, catName = 6, "Application Activity"
	}
	actName := activityNames[class][act]
	r := ocsfRecord{
		ActivityID: act, ActivityName: actName, CategoryUID: cat, CategoryName: catName,
		ClassUID: class, ClassName: veritrail.ClassName(class), TypeUID: class*100 + act, TypeName: veritrail.ClassName(class) + ": " + actName,
		SeverityID: 1, Severity: "Informational", StatusID: 0, Status: "Unknown",
		Time: e.Time.UnixMilli(), Duration: e.DurationMS, Message: summary(e),
		Metadata: ocsfMetadata{Version: OCSFVersion, UID: e.ID, Sequence: e.Seq, EventCode: e.Type,
			OriginalTime: e.Time.UTC().Format(time.RFC3339Nano), LoggedTime: e.ReceivedAt.UnixMilli(), TenantUID: org,
			CorrelationUID: e.TaskID, Product: ocsfProduct{Name: "Veritrail", VendorName: "Veritrail"}},
		Unmapped: ocsfUnmapped{AgentID: e.AgentID, TaskID: e.TaskID, SessionID: e.SessionID, Connector: e.Connector,
			Tool: e.Tool, ActorType: e.Actor.Type, ContentDigest: e.ContentDigest},
	}
	switch e.Outcome {
	case veritrail.OutcomeSuccess:
		r.StatusID, r.Status = 1, "Success"
	case veritrail.OutcomeFailure:
		r.StatusID, r.Status = 2, "Failure"
		r.SeverityID, r.Severity = 2, "Low"
	}
	if e.Status != nil {
		r.StatusCode = strconv.FormatInt(*e.Status, 10)
	}
	tid, tname := ocsfActorType(e.Actor.Type)
	actorUser := &ocsfUser{UID: e.Actor.ID, EmailAddr: e.Actor.Email, Name: e.Actor.Name, Type: tname, TypeID: tid}
	r.Actor.User = actorUser
	if e.SessionID != "" {
		r.Actor.Session = &ocsfUID{UID: e.SessionID}
	}
	r.Actor.AppName = e.Connector
	if c := e.Context; c != nil {
		r.SrcEndpoint.IP = c.IP
		if c.UserAgent != "" || c.RequestID != "" {
			r.HTTPRequest = &ocsfHTTPRequest{UserAgent: c.UserAgent, UID: c.RequestID}
		}
		r.Unmapped.TeamID = c.TeamID
	}
	var target *ocsfResource
	if t := e.Target; t != nil && (t.ID != "" || t.Type != "" || t.Name != "") {
		target = &ocsfResource{UID: t.ID, Type: t.Type, Name: t.Name}
	}
	switch class {
	case veritrail.ClassAuthentication:
		r.User = actorUser
	case veritrail.ClassAccountChange, veritrail.ClassUserAccess:
		r.User = actorUser
		if target != nil {
			r.User = &ocsfUser{UID: target.UID, Name: target.Name, Type: target.Type}
		}
	case veritrail.ClassEntityManagement:
		r.Entity = target
		if r.Entity == nil {
			r.Entity = &ocsfResource{Type: e.Type}
		}
	case veritrail.ClassGroupManagement:
		r.Group = target
		if r.Group == nil {
			r.Group = &ocsfResource{}
		}
	default:
		op := e.Type
		if e.Tool != "" {
			op = e.Tool
		}
		r.API = &ocsfAPI{Operation: op}
		if e.Connector != "" {
			r.API.Service = &ocsfService{Name: e.Connector}
		}
		if e.Context != nil && e.Context.RequestID != "" {
			r.API.Request = &ocsfUID{UID: e.Context.RequestID}
		}
		if target != nil {
			r.Resources = []ocsfResource{*target}
		}
	}
	if d := e.Decision; d != nil {
		r.Metadata.Profiles = []string{"security_control"}
		switch d.Action {
		case veritrail.DecisionAllowed:
			r.ActionID, r.Action, r.DispositionID, r.Disposition = 1, "Allowed", 1, "Allowed"
		case veritrail.DecisionBlocked:
			r.ActionID, r.Action, r.DispositionID, r.Disposition = 2, "Denied", 2, "Blocked"
			r.SeverityID, r.Severity = 3, "Medium"
		case veritrail.DecisionRedacted:
			r.ActionID, r.Action, r.DispositionID, r.Disposition = 4, "Modified", 99, "Redacted"
		}
		var pol *ocsfPolicy
		if d.Policy != "" || d.Reason != "" {
			pol = &ocsfPolicy{Name: d.Policy, Desc: d.Reason}
		}
		r.Actor.Authorizations = []ocsfAuthorization{{Decision: d.Action, Policy: pol}}
		if r.StatusDetail == "" {
			r.StatusDetail = d.Reason
		}
	}
	return &r
}

// summary is a one-line description of e: "agent.tool_call by dana@acme.example".
func summary(e *veritrail.Event) string {
	s := e.Type + " by " + cmp.Or(e.Actor.Email, e.Actor.Name, e.Actor.ID, e.Actor.Type)
	if e.Tool != "" {
		s += " (" + e.Tool + ")"
	}
	if e.Decision != nil {
		s += ": " + e.Decision.Action
	}
	return s
}
