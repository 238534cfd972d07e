package mcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/dlp"
)

// Policy decides what happens to governed calls. It is loaded from JSON:
//
//	{"name": "eng-default", "default": "allow",
//	 "rules": [{"name": "no-env", "connector": "*", "tool": "get-env",
//	            "action": "block", "reason": "environment holds secrets"},
//	           {"tool": "*", "detect": ["aws_access_key_id"], "action": "redact"},
//	           {"tool": "export_*", "actor": "*@contractor.example", "match": "\\d{5,}",
//	            "action": "block", "reason": "bulk export"}]}
//
// A rule applies to a call when its connector, tool, method and actor
// globs all match (empty or "*" matches anything; tool is the tool name,
// the prompt name for prompts/get, the resource URI for resources/read;
// actor matches the actor's id or e-mail) and, for allow and block rules
// with a match regexp or detect list, when a string or number in the
// arguments has a finding.
//
// Rules are checked in order. The first allow or block rule that applies
// decides. Every redact rule that applies before it (or, without one, at
// all) masks its findings — match regexp and detect detectors — in the
// arguments the server receives, in the result the agent receives, and in
// the record; a later block rule still blocks. With no deciding rule, the
// default (allow unless "block") decides.
type Policy struct {
	Name    string `json:"name"`
	Default string `json:"default"`
	Rules   []Rule `json:"rules"`
}

// Rule is one policy rule; see Policy.
type Rule struct {
	Name      string   `json:"name"`
	Connector string   `json:"connector"`
	Tool      string   `json:"tool"`
	Method    string   `json:"method"`
	Actor     string   `json:"actor"`
	Match     string   `json:"match"`
	Detect    []string `json:"detect"`
	Action    string   `json:"action"`
	Reason    string   `json:"reason"`

	connector, tool, method, actor *regexp.Regexp
	set                            *dlp.Set
	id                             string
}

// Policy actions.
const (
	ActionAllow  = "allow"
	ActionBlock  = "block"
	ActionRedact = "redact"
)

// LoadPolicy reads a policy file. Its name defaults to the file's base name.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	if p.Name == "" {
		p.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return p, nil
}

// ParsePolicy parses and checks a policy; errors name the offending field.
func ParsePolicy(b []byte) (*Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("not a policy: %w", err)
	}
	if p.Name == "" {
		p.Name = "policy"
	}
	switch p.Default {
	case "", ActionAllow:
		p.Default = ActionAllow
	case ActionBlock:
	default:
		return nil, fmt.Errorf("default: must be allow or block, got %q", p.Default)
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		field := func(f string) string { return fmt.Sprintf("rules[%d].%s", i, f) }
		for _, g := range []struct {
			name string
			v    string
			dst  **regexp.Regexp
		}{{"connector", r.Connector, &r.connector}, {"tool", r.Tool, &r.tool}, {"method", r.Method, &r.method}, {"actor", r.Actor, &r.actor}} {
			*g.dst = globRegexp(g.v)
		}
		if r.Method != "" && r.Method != "*" && !governed(r.Method) {
			return nil, fmt.Errorf("%s: must be tools/call, resources/read or prompts/get, got %q", field("method"), r.Method)
		}
		r.set = &dlp.Set{}
		if len(r.Detect) > 0 {
			for j, d := range r.Detect {
				if !dlp.Known(d) {
					return nil, fmt.Errorf("%s[%d]: unknown detector %q; known: %s", field("detect"), j, d, strings.Join(dlp.Names(), ", "))
				}
			}
			r.set = dlp.NewSet(r.Detect...)
		}
		r.id = r.Name
		if r.id == "" {
			r.id = fmt.Sprintf("%s#%d", p.Name, i+1)
		}
		if r.Match != "" {
			re, err := regexp.Compile(r.Match)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", field("match"), err)
			}
			r.set = r.set.WithPattern(r.id, re)
		}
		switch r.Action {
		case ActionAllow, ActionBlock:
		case ActionRedact:
			if r.set.Empty() {
				return nil, fmt.Errorf("%s: a redact rule needs match or detect (what to mask)", field("action"))
			}
		default:
			return nil, fmt.Errorf("%s: must be allow, block or redact, got %q", field("action"), r.Action)
		}
		if len(r.Reason) > 1024 {
			return nil, fmt.Errorf("%s: longer than 1024 bytes", field("reason"))
		}
	}
	return &p, nil
}

// globRegexp turns a glob (* any run, ? one character) into an anchored
// regexp; "" and "*" match everything (nil).
func globRegexp(g string) *regexp.Regexp {
	if g == "" || g == "*" {
		return nil
	}
	var b strings.Builder
	b.WriteString("^")
	for _, c := range g {
		switch c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func globMatch(re *regexp.Regexp, vals ...string) bool {
	if re == nil {
		return true
	}
	for _, v := range vals {
		if v != "" && re.MatchString(v) {
			return true
		}
	}
	return false
}

// Call is what a policy looks at.
type Call struct {
	Connector string
	Method    string
	Tool      string
	Actor     veritrail.Actor
	Arguments any // decoded JSON (dlp.Decode), nil when absent
}

// Verdict is a policy's answer for one call.
type Verdict struct {
	// Action is allowed or blocked (redaction is decided when the masks
	// are applied: see Redactor).
	Action string
	Policy string // the deciding rule's name (or policy#N), or the policy's name for the default
	Reason string
	// Redactor masks what the applying redact rules find (nil: none).
	Redactor *dlp.Set
	// RedactPolicy names the first applying redact rule, RedactReason its reason.
	RedactPolicy, RedactReason string
}

// Evaluate decides a call.
func (p *Policy) Evaluate(c *Call) *Verdict {
	v := &Verdict{}
	var redactors []*dlp.Set
	for i := range p.Rules {
		r := &p.Rules[i]
		if !globMatch(r.connector, c.Connector) || !globMatch(r.tool, c.Tool) ||
			!globMatch(r.method, c.Method) || !globMatch(r.actor, c.Actor.ID, c.Actor.Email) {
			continue
		}
		if r.Action == ActionRedact {
			redactors = append(redactors, r.set)
			if v.RedactPolicy == "" {
				v.RedactPolicy, v.RedactReason = r.id, r.Reason
			}
			continue
		}
		if !r.set.Empty() && (c.Arguments == nil || len(r.set.ScanValue(c.Arguments, "")) == 0) {
			continue
		}
		v.Action, v.Policy, v.Reason = decisionOf(r.Action), r.id, r.Reason
		if v.Reason == "" {
			v.Reason = fmt.Sprintf("rule %s: %s", r.id, r.Action)
		}
		break
	}
	if v.Action == "" {
		v.Action, v.Policy = decisionOf(p.Default), p.Name
		v.Reason = "no rule decided; default " + p.Default
	}
	if len(redactors) > 0 {
		v.Redactor = merge(redactors)
	}
	return v
}

func decisionOf(action string) string {
	if action == ActionBlock {
		return veritrail.DecisionBlocked
	}
	return veritrail.DecisionAllowed
}

// merge combines detector sets into one.
func merge(sets []*dlp.Set) *dlp.Set {
	if len(sets) == 1 {
		return sets[0]
	}
	return dlp.Union(sets...)
}
