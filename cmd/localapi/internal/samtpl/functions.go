package samtpl

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// httpAPIs reads the properties of every AWS::Serverless::HttpApi by logical id.
func httpAPIs(resources map[string]rawResource, ids []string) (map[string]httpAPIProps, error) {
	apis := map[string]httpAPIProps{}
	for _, id := range ids {
		res := resources[id]
		if res.Type != "AWS::Serverless::HttpApi" {
			continue
		}
		var p httpAPIProps
		if err := remarshal(res.Properties, &p); err != nil {
			return nil, fmt.Errorf("template: %s: %w", id, err)
		}
		apis[id] = p
	}
	return apis, nil
}

// parseFunction reads one function (its properties with Globals merged) and its HttpApi routes.
func parseFunction(id string, props map[string]any, apis map[string]httpAPIProps) (*Function, []Route, error) {
	var p fnProps
	if err := remarshal(props, &p); err != nil {
		return nil, nil, fmt.Errorf("template: %s: %w", id, err)
	}
	f := &Function{LogicalID: id, Timeout: 3, MemorySize: 128, LogFormat: p.LoggingConfig.LogFormat,
		Env: map[string]string{}, Async: AsyncConfig{MaximumRetryAttempts: 2}, Policies: p.Policies}
	if p.Timeout != nil {
		f.Timeout = int(*p.Timeout)
	}
	if p.MemorySize != nil {
		f.MemorySize = int(*p.MemorySize)
	}
	for k, v := range p.Environment.Variables {
		s, ok := scalar(v)
		if !ok {
			f.Unresolved = append(f.Unresolved, k)
			continue
		}
		f.Env[k] = s
	}
	sort.Strings(f.Unresolved)
	if c := p.EventInvokeConfig; c != nil {
		if c.MaximumRetryAttempts != nil {
			f.Async.MaximumRetryAttempts = int(*c.MaximumRetryAttempts)
		}
		f.Async.OnFailureType = c.DestinationConfig.OnFailure.Type
		f.Async.OnFailure, _ = scalar(c.DestinationConfig.OnFailure.Destination)
	}
	var routes []Route
	for _, ev := range slices.Sorted(maps.Keys(p.Events)) {
		e := p.Events[ev]
		if e.Type != "HttpApi" {
			continue
		}
		r, err := parseRoute(id, ev, e, apis)
		if err != nil {
			return nil, nil, err
		}
		routes = append(routes, r)
	}
	return f, routes, nil
}

// parseRoute reads one HttpApi event: method, path, and the authorizer in force (the event's own, else the API's
// default; NONE makes the route public).
func parseRoute(id, ev string, e rawEvent, apis map[string]httpAPIProps) (Route, error) {
	r := Route{Method: strings.ToUpper(e.Properties.Method), Path: e.Properties.Path, Function: id, Event: ev}
	if r.Method == "" {
		r.Method = "ANY"
	}
	if r.Path == "" {
		return r, fmt.Errorf("template: %s event %s: HttpApi without Path (the $default route is not supported locally)", id, ev)
	}
	apiID, _ := scalar(e.Properties.ApiId)
	api, hasAPI := apis[apiID]
	name := ""
	if hasAPI {
		name = api.Auth.DefaultAuthorizer
	}
	if e.Properties.Auth != nil && e.Properties.Auth.Authorizer != "" {
		name = e.Properties.Auth.Authorizer
	}
	if name == "" || name == "NONE" {
		return r, nil
	}
	a, ok := api.Auth.Authorizers[name]
	if !ok {
		return r, fmt.Errorf("template: %s event %s: authorizer %q not declared on %s", id, ev, name, apiID)
	}
	if a.JwtConfiguration != nil {
		return r, fmt.Errorf("template: %s event %s: JWT authorizers are not supported locally", id, ev)
	}
	arn, _ := scalar(a.FunctionArn)
	auth := &Authorizer{Name: name, Function: FunctionName(arn), SimpleResponses: a.EnableSimpleResponses}
	auth.PayloadVersion, _ = scalar(a.AuthorizerPayloadFormatVersion)
	if a.Identity != nil {
		for _, h := range a.Identity.Headers {
			auth.IdentitySources = append(auth.IdentitySources, "$request.header."+h)
		}
		for _, q := range a.Identity.QueryStrings {
			auth.IdentitySources = append(auth.IdentitySources, "$request.querystring."+q)
		}
		if a.Identity.ReauthorizeEvery != nil {
			auth.ReauthorizeEvery = int(*a.Identity.ReauthorizeEvery)
		}
	}
	r.Authorizer = auth
	return r, nil
}

// linkInvokers records who invokes each function other than a route: the authorizer, a custom resource, or
// another function through an environment variable naming it.
func (t *Template) linkInvokers(resources map[string]rawResource, ids []string) {
	for _, r := range t.Routes {
		if r.Authorizer != nil {
			if f, ok := t.Functions[r.Authorizer.Function]; ok && !slices.Contains(f.InvokedBy, "authorizer") {
				f.InvokedBy = append(f.InvokedBy, "authorizer")
			}
		}
	}
	for _, id := range ids {
		res := resources[id]
		switch {
		case res.Type == "AWS::CloudFormation::CustomResource" || strings.HasPrefix(res.Type, "Custom::"):
			tok, _ := scalar(res.Properties["ServiceToken"])
			if f, ok := t.Functions[FunctionName(tok)]; ok {
				f.InvokedBy = append(f.InvokedBy, "custom-resource:"+id)
			}
		case res.Type == "AWS::Serverless::Function":
			caller := t.Functions[id]
			for _, k := range slices.Sorted(maps.Keys(caller.Env)) {
				if f, ok := t.Functions[FunctionName(caller.Env[k])]; ok && f.LogicalID != id {
					f.InvokedBy = append(f.InvokedBy, "env:"+id+"."+k)
				}
			}
		}
	}
}
