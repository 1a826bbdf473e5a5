package admin

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestOpenAPICoversEveryRoute: every operation mounted under /admin/v1 is
// in the OpenAPI document, and every documented operation is mounted.
// It reads the routes back from echo, not from the package's table, so a
// route added beside the table is caught too.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method, op := range item {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
			var o struct {
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(op, &o); err != nil || len(o.Responses) == 0 {
				t.Errorf("%s %s: no responses", method, path)
			}
		}
	}
	e := echo.New()
	NewAPI(nil, nil).Register(e)
	mounted := map[string]bool{}
	for _, r := range e.Routes() {
		if !strings.HasPrefix(r.Path, Prefix) {
			continue
		}
		parts := strings.Split(r.Path, "/")
		for i, p := range parts {
			if strings.HasPrefix(p, ":") {
				parts[i] = "{" + p[1:] + "}"
			}
		}
		mounted[r.Method+" "+strings.Join(parts, "/")] = true
	}
	for k := range mounted {
		if !documented[k] {
			t.Errorf("%s is served but not in openapi.json", k)
		}
	}
	for k := range documented {
		if !mounted[k] {
			t.Errorf("%s is in openapi.json but not served", k)
		}
	}
	if len(mounted) < 30 {
		t.Fatalf("only %d routes mounted", len(mounted))
	}
	// The package's own list agrees (Routes is what the README lists).
	var listed []string
	for _, r := range Routes() {
		listed = append(listed, r[0]+" "+r[1])
	}
	for k := range mounted {
		if !slices.Contains(listed, k) {
			t.Errorf("%s mounted but not in Routes()", k)
		}
	}
}
