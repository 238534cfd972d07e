package veritrail

import (
	"strconv"
	"strings"
)

// The kind of activity an event records, in the terms of the Open
// Cybersecurity Schema Framework: its class (Authentication, Account
// Change, …) and the activity within it (Logon, Logoff, …). One mapping,
// from the event type (and tool), serves the sinks' OCSF records and the
// class filter of queries: sign-ins are one class whether a source calls
// them auth.login or authentication.sign_in_failed. FORWARDING.md has the
// table.

// OCSF classes events fall in.
const (
	ClassAccountChange    = 3001
	ClassAuthentication   = 3002
	ClassEntityManagement = 3004
	ClassUserAccess       = 3005
	ClassGroupManagement  = 3006
	ClassAPIActivity      = 6003
)

// Classes lists the classes, in the order of their uids.
var Classes = []int{ClassAccountChange, ClassAuthentication, ClassEntityManagement, ClassUserAccess, ClassGroupManagement, ClassAPIActivity}

var classNames = map[int]string{
	ClassAccountChange: "Account Change", ClassAuthentication: "Authentication", ClassEntityManagement: "Entity Management",
	ClassUserAccess: "User Access Management", ClassGroupManagement: "Group Management", ClassAPIActivity: "API Activity",
}

// ClassName is the OCSF name of a class: "Account Change".
func ClassName(class int) string { return classNames[class] }

// ClassKey is the name of a class as the class filter takes it and the
// index key of FieldClass: the OCSF name in lower case, words joined by
// "_" ("account_change", "api_activity").
func ClassKey(class int) string { return classKeys[class] }

// classKeys holds ClassKey's answers, made once: queries call ClassKey
// for every distinct event type they meet.
var classKeys = func() map[int]string {
	m := make(map[int]string, len(classNames))
	for c, name := range classNames {
		m[c] = strings.ReplaceAll(strings.ToLower(name), " ", "_")
	}
	return m
}()

// parseClass reads a class filter value: a ClassKey, the OCSF name in any
// case ("API Activity"), or the uid ("6003").
func parseClass(v string) (int, bool) {
	if n, err := strconv.Atoi(v); err == nil {
		_, ok := classNames[n]
		return n, ok
	}
	k := strings.ReplaceAll(strings.ToLower(v), " ", "_")
	for _, c := range Classes {
		if ClassKey(c) == k {
			return c, true
		}
	}
	return 0, false
}

// words of an action, e.g. "user_password_reset" → user, password, reset.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '_' || r == '.' || r == '-' })
}

func hasWord(ws []string, any ...string) bool {
	for _, w := range ws {
		for _, a := range any {
			if w == a {
				return true
			}
		}
	}
	return false
}

// crudActivity maps a verb in ws to Create/Read/Update/Delete (1–4) or 99.
func crudActivity(ws []string) int {
	switch {
	case hasWord(ws, "create", "created", "add", "added", "insert", "new", "upload", "uploaded", "invite", "invited", "post"):
		return 1
	case hasWord(ws, "delete", "deleted", "remove", "removed", "revoke", "revoked", "destroy", "purge", "erasure"):
		return 4
	case hasWord(ws, "update", "updated", "change", "changed", "edit", "edited", "modify", "modified", "rename", "renamed", "set", "put", "patch", "move", "moved"):
		return 3
	case hasWord(ws, "read", "view", "viewed", "get", "list", "query", "search", "export", "exported", "download", "downloaded", "open", "opened", "fetch", "navigate", "interaction"):
		return 2
	}
	return 99
}

// ClassOf is the class of events of type typ. It depends on the type
// alone, so a store can filter on it through its index of types.
func ClassOf(typ string) int {
	class, _ := Classify(typ, "")
	return class
}

// Classify picks the class and activity of an event of type typ; tool
// (the event's tool, if any) gives the verb of an API activity whose type
// has none.
func Classify(typ, tool string) (class, activity int) {
	cat := Category(typ)
	action := strings.TrimPrefix(typ[len(cat):], ".")
	ws := words(action)
	switch {
	case cat == "auth" || cat == "authentication" || cat == "sso" ||
		hasWord(ws, "login", "logout", "signin", "signout") || strings.Contains(action, "sign_in") || strings.Contains(action, "sign_out"):
		switch {
		case hasWord(ws, "logout", "signout", "logoff") || strings.Contains(action, "sign_out"):
			return ClassAuthentication, 2
		case hasWord(ws, "login", "signin", "logon") || strings.Contains(action, "sign_in"):
			return ClassAuthentication, 1
		}
		return ClassAuthentication, 99
	case hasWord(ws, "role", "permission", "permissions", "privilege", "privileges", "grant", "granted", "access"):
		if hasWord(ws, "revoke", "revoked", "removed", "remove") {
			return ClassUserAccess, 2
		}
		return ClassUserAccess, 1
	case cat == "user" || cat == "account" || (len(ws) > 0 && (ws[0] == "user" || ws[0] == "account")):
		switch {
		case hasWord(ws, "mfa") && hasWord(ws, "enabled", "enable", "added"):
			return ClassAccountChange, 10
		case hasWord(ws, "mfa") && hasWord(ws, "disabled", "disable", "removed"):
			return ClassAccountChange, 11
		case hasWord(ws, "password") && hasWord(ws, "reset"):
			return ClassAccountChange, 4
		case hasWord(ws, "password"):
			return ClassAccountChange, 3
		case hasWord(ws, "created", "create", "invited", "provisioned", "added"):
			return ClassAccountChange, 1
		case hasWord(ws, "enabled", "enable", "reactivated", "unlocked"):
			return ClassAccountChange, 2
		case hasWord(ws, "disabled", "disable", "deactivated", "suspended", "deprovisioned"):
			return ClassAccountChange, 5
		case hasWord(ws, "deleted", "delete", "removed"):
			return ClassAccountChange, 6
		case hasWord(ws, "locked", "lock"):
			return ClassAccountChange, 9
		}
		return ClassAccountChange, 99
	case cat == "team" || cat == "group" || (len(ws) > 0 && (ws[0] == "team" || ws[0] == "group")):
		switch {
		case hasWord(ws, "created", "create"):
			return ClassGroupManagement, 6
		case hasWord(ws, "deleted", "delete"):
			return ClassGroupManagement, 5
		case hasWord(ws, "member", "user") && hasWord(ws, "added", "add", "joined"):
			return ClassGroupManagement, 3
		case hasWord(ws, "member", "user") && hasWord(ws, "removed", "remove", "left"):
			return ClassGroupManagement, 4
		}
		return ClassGroupManagement, 99
	case cat == "audit" && len(ws) > 0 && (ws[0] == "token" || ws[0] == "sink" || ws[0] == "settings" || ws[0] == "org" || ws[0] == "export"):
		return ClassEntityManagement, crudActivity(ws)
	}
	act := crudActivity(ws)
	if act == 99 && tool != "" {
		act = crudActivity(words(tool))
	}
	return ClassAPIActivity, act
}
