package rules

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/notify"
)

//go:embed pack.yaml
var packYAML []byte

// PackSpecs returns the built-in pack's rules (their Pack set, no routes).
func PackSpecs() ([]*Spec, error) {
	frs, err := ParseFile(packYAML, nil)
	if err != nil {
		return nil, err
	}
	out := make([]*Spec, 0, len(frs))
	for _, fr := range frs {
		s, err := DecodeSpec(fr.JSON)
		if err != nil {
			return nil, fmt.Errorf("built-in pack, rule at line %d: %w", fr.Line, err)
		}
		s.Pack = PackBuiltin
		out = append(out, s)
	}
	return out, nil
}

// PackRequest is the body of PUT /api/v1/rules/pack.
type PackRequest struct {
	Enabled bool           `json:"enabled"`
	Routes  []notify.Route `json:"routes,omitempty"`
}

// DecodePackRequest reads a PackRequest as DecodeSpec reads a rule:
// unknown fields refused, errors naming the field (routes[0].url).
func DecodePackRequest(b []byte, req *PackRequest) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		return veritrail.Errorf(veritrail.EInvalidJSON, "the body is a JSON object: {\"enabled\": true, \"routes\": […]}")
	}
	return decodeFields(raw, reflect.ValueOf(req).Elem(), "")
}

// BuildPack returns the built-in pack's rules for org as they must be
// stored for req: each pack rule with req's routes, enabled or not, new
// ones or changed existing ones (by name). Unchanged rules are left out.
func (e *Engine) BuildPack(ctx context.Context, org int64, req *PackRequest, existing []*veritrail.Rule) (created, changed []*veritrail.Rule, err error) {
	specs, err := PackSpecs()
	if err != nil {
		return nil, nil, err
	}
	byName := map[string]*veritrail.Rule{}
	for _, r := range existing {
		byName[r.Name] = r
	}
	// Routes sent back as shown keep the secrets the pack's rules hold
	// (they all hold the same routes).
	for _, sp := range specs {
		if old := byName[sp.Name]; old != nil {
			if spec, err := decodeStoredSpec(old.Spec); err == nil {
				if clear, err := e.openRoutes(old, spec); err == nil {
					keepSecrets(req.Routes, clear)
				}
			}
			break
		}
	}
	if err := e.checkRoutes(ctx, req.Routes); err != nil {
		return nil, nil, err
	}
	for _, s := range specs {
		s.Routes = slices.Clone(req.Routes)
		enabled := req.Enabled
		s.Enabled = &enabled
		old := byName[s.Name]
		if old == nil && !req.Enabled {
			continue // off and never on: nothing to keep
		}
		r, ch, err := e.build(ctx, org, authorBuiltin, true, s, old)
		if err != nil {
			return nil, nil, fmt.Errorf("built-in pack, rule %q: %w", s.Name, err)
		}
		switch {
		case old == nil:
			created = append(created, r)
		case ch:
			changed = append(changed, r)
		}
	}
	return created, changed, nil
}

// PackView is GET /api/v1/rules/pack: whether the pack is on, its routes
// (those its rules hold, also while it is off) and its rules.
type PackView struct {
	Enabled bool           `json:"enabled"`
	Routes  []notify.Route `json:"routes"`
	Rules   []PackRuleView `json:"rules"`
}

// PackRuleView is one of the pack's rules.
type PackRuleView struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	ID       string `json:"id,omitempty"`
	Enabled  bool   `json:"enabled"`
}

// Pack shows the pack as installed among rules.
func (e *Engine) Pack(rules []*veritrail.Rule) (*PackView, error) {
	specs, err := PackSpecs()
	if err != nil {
		return nil, err
	}
	byName := map[string]*veritrail.Rule{}
	for _, r := range rules {
		byName[r.Name] = r
	}
	v := &PackView{Routes: []notify.Route{}}
	for _, s := range specs {
		rv := PackRuleView{Name: s.Name, Kind: s.Kind, Severity: s.Severity}
		if r := byName[s.Name]; r != nil {
			view, err := e.View(r)
			if err != nil {
				return nil, err
			}
			rv.ID, rv.Enabled = r.ID, *view.Enabled
			// The routes its rules hold, kept while it is off (turning it
			// on again with them as shown keeps their secrets).
			if rv.Enabled && !v.Enabled || len(v.Routes) == 0 {
				v.Routes = view.Routes
			}
			v.Enabled = v.Enabled || rv.Enabled
		}
		v.Rules = append(v.Rules, rv)
	}
	return v, nil
}
