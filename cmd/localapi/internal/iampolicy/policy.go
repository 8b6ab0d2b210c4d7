// Package iampolicy stands in for IAM on the local API's DynamoDB calls. moto and DynamoDB Local accept any call, so
// code that outgrew its function's template policy works under make run and fails with AccessDeniedException after
// sam deploy. The Guard sits between each function and the DynamoDB endpoint and forwards a call only when the
// function's policy in template.yaml allows it, evaluated as IAM evaluates the subset of policy language the
// template uses; anything outside that subset is refused when the policies are read, never guessed.
package iampolicy

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Statement is one resolved policy statement that can grant a DynamoDB action.
type Statement struct {
	Allow     bool
	Actions   []string // patterns: "dynamodb:GetItem", "dynamodb:Get*"
	Resources []string // patterns
	// Conditions are operator → condition key → values, e.g. "ForAllValues:StringLike" → "dynamodb:LeadingKeys".
	Conditions map[string]map[string][]string
}

// Policy is the DynamoDB-relevant part of one function's policies.
type Policy []Statement

// Access is what a call asks for: one action on one resource, with the call's values of the condition keys.
type Access struct {
	Action   string
	Resource string
	Keys     map[string][]string
}

// Allows evaluates IAM's way: an explicit deny wins, else some allow must match.
func (p Policy) Allows(a Access) bool {
	allowed := false
	for _, s := range p {
		if s.matches(a) {
			if !s.Allow {
				return false
			}
			allowed = true
		}
	}
	return allowed
}

func (s Statement) matches(a Access) bool {
	if !slices.ContainsFunc(s.Actions, func(p string) bool { return like(strings.ToLower(p), strings.ToLower(a.Action)) }) ||
		!slices.ContainsFunc(s.Resources, func(p string) bool { return like(p, a.Resource) }) {
		return false
	}
	for op, keys := range s.Conditions {
		for key, want := range keys {
			if !condition(op, want, a.Keys[key]) {
				return false
			}
		}
	}
	return true
}

// condition applies one operator. ForAllValues holds when every value of the call matches one of want, so it holds
// for a call without the key (a Scan has no leading keys): IAM's rule, not a shortcut.
func condition(op string, want, got []string) bool {
	set, base, multi := strings.Cut(op, ":")
	if !multi {
		set, base = "", op
	}
	match := func(v string) bool {
		return slices.ContainsFunc(want, func(w string) bool {
			if base == "StringLike" {
				return like(w, v)
			}
			return w == v
		})
	}
	switch set {
	case "ForAllValues":
		return !slices.ContainsFunc(got, func(v string) bool { return !match(v) })
	default: // ForAnyValue, or a single-valued key
		return slices.ContainsFunc(got, match)
	}
}

// like is IAM's StringLike: * matches any run of characters, ? one character.
func like(pattern, s string) bool {
	// path.Match treats / as a separator and [ ] \ as syntax; IAM does neither, so escape those and map / away.
	r := strings.NewReplacer("\\", "\\\\", "[", "\\[", "]", "\\]", "/", "\x00")
	ok, err := path.Match(r.Replace(pattern), strings.ReplaceAll(s, "/", "\x00"))
	return err == nil && ok
}

// operators and keys the stand-in evaluates; a statement granting DynamoDB actions with anything else is refused.
var (
	operators = []string{"StringEquals", "StringLike", "ForAllValues:StringEquals", "ForAllValues:StringLike",
		"ForAnyValue:StringEquals", "ForAnyValue:StringLike"}
	conditionKeys = []string{"dynamodb:LeadingKeys", "dynamodb:Attributes"}
)

// Parse reads a function's resolved Policies property (SAM: a managed policy name, a policy document, a SAM policy
// template, or a list of them) and keeps the statements that can grant DynamoDB actions.
func Parse(policies any) (Policy, error) {
	var out Policy
	items, ok := policies.([]any)
	if !ok && policies != nil {
		items = []any{policies}
	}
	for _, it := range items {
		switch v := it.(type) {
		case string: // a managed policy: its statements are not in the template
			if strings.Contains(strings.ToLower(v), "dynamodb") {
				return nil, fmt.Errorf("managed policy %s: the stand-in cannot read it; use statements", v)
			}
		case map[string]any:
			if st, ok := v["Statement"]; ok {
				stmts, err := statements(st)
				if err != nil {
					return nil, err
				}
				out = append(out, stmts...)
				continue
			}
			for name := range v { // a SAM policy template
				if strings.Contains(strings.ToLower(name), "dynamodb") {
					return nil, fmt.Errorf("policy template %s: the stand-in cannot expand it; use statements", name)
				}
			}
		default:
			return nil, fmt.Errorf("policy %v: not a name, document or template", it)
		}
	}
	return out, nil
}

func statements(v any) (Policy, error) {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	var out Policy
	for _, raw := range list {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("statement %v: not a map", raw)
		}
		for _, k := range []string{"NotAction", "NotResource", "Principal", "NotPrincipal"} {
			if _, ok := m[k]; ok {
				return nil, fmt.Errorf("statement with %s: not evaluated by the stand-in", k)
			}
		}
		s := Statement{Allow: m["Effect"] == "Allow", Actions: strs(m["Action"]), Resources: strs(m["Resource"])}
		if !slices.ContainsFunc(s.Actions, func(a string) bool {
			a = strings.ToLower(a)
			return strings.HasPrefix(a, "dynamodb:") || like(a, "dynamodb:") // "dynamodb:GetItem", "*", "dyn*"
		}) {
			continue
		}
		if m["Effect"] != "Allow" && m["Effect"] != "Deny" {
			return nil, fmt.Errorf("statement %v: Effect must be Allow or Deny", s.Actions)
		}
		cond, _ := m["Condition"].(map[string]any)
		if m["Condition"] != nil && cond == nil {
			return nil, fmt.Errorf("statement %v: Condition is not a map", s.Actions)
		}
		s.Conditions = map[string]map[string][]string{}
		for op, keys := range cond {
			km, ok := keys.(map[string]any)
			if !ok || !slices.Contains(operators, op) {
				return nil, fmt.Errorf("statement %v: condition operator %s is not evaluated by the stand-in", s.Actions, op)
			}
			s.Conditions[op] = map[string][]string{}
			for k, vals := range km {
				if !slices.Contains(conditionKeys, k) {
					return nil, fmt.Errorf("statement %v: condition key %s is not evaluated by the stand-in", s.Actions, k)
				}
				s.Conditions[op][k] = strs(vals)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// strs reads a string-or-list policy value.
func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
