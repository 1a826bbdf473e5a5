package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestKeyPathsFollowTheEnvRule(t *testing.T) {
	paths := KeyPaths()
	for _, want := range []string{"issuer", "secret_key", "log.level", "policy.session_idle", "policy.rollout.default",
		"policy.rollout.regions", "signup.enabled", "clients", "clients[].grant_types", "organizations[].claims.email", "organizations[].jit"} {
		if !slices.Contains(paths, want) {
			t.Errorf("KeyPaths lacks %q", want)
		}
	}
	rule := strings.NewReplacer(".", "_")
	seen := make(map[string]string)
	for _, p := range paths {
		env, ok := EnvVar(p)
		if strings.Contains(p, "[]") {
			if ok {
				t.Errorf("%s is inside a list but has variable %s", p, env)
			}
			continue
		}
		if want := "LATCHKEY_" + strings.ToUpper(rule.Replace(p)); !ok || env != want {
			t.Errorf("EnvVar(%q) = %q, %v; want %q", p, env, ok, want)
		}
		if other, dup := seen[env]; dup {
			t.Errorf("%s and %s both map to %s", other, p, env)
		}
		seen[env] = p
	}
	if got, _ := EnvVar("policy.session_idle"); got != "LATCHKEY_POLICY_SESSION_IDLE" {
		t.Errorf("EnvVar(policy.session_idle) = %q", got)
	}
	if _, ok := EnvVar("no.such.key"); ok {
		t.Error("EnvVar accepted an unknown path")
	}
}

// Every variable reaches its field: applying it records the variable as
// the origin of exactly that path.
func TestEveryEnvVarApplies(t *testing.T) {
	for _, k := range keysOnce() {
		if k.env == "" {
			continue
		}
		c := Default()
		c.origin = make(map[string]string)
		p := &problems{origin: c.origin, undecodable: make(map[string]bool)}
		val := "x"
		switch k.typ.Kind() {
		case reflect.Slice:
			val = "[]"
		case reflect.Map:
			val = "{}"
		}
		if w := applyEnv(c, []string{k.env + "=" + val}, p); len(w) != 0 {
			t.Errorf("%s: %q", k.env, w)
		}
		if got := c.origin[k.path]; got != "from "+k.env {
			t.Errorf("%s did not reach %s (origin %q)", k.env, k.path, got)
		}
	}
}

// full.yaml is the reference file: it must set every key, so a new field
// without a test fails here.
func TestFullFileSetsEveryKey(t *testing.T) {
	b, err := os.ReadFile("testdata/ok/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	keys := KeyPaths()
	mapKeys := make(map[string]bool)
	for _, k := range keysOnce() {
		mapKeys[k.path] = k.typ.Kind() == reflect.Map
	}
	set := make(map[string]bool)
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			walk(n.Content[0], path)
		case yaml.SequenceNode:
			for _, e := range n.Content {
				walk(e, path+"[]")
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := join(path, n.Content[i].Value)
				set[p] = true
				if mapKeys[p] {
					continue // the keys of a map value are data, not config keys
				}
				walk(n.Content[i+1], p)
			}
		}
	}
	walk(&root, "")
	for _, k := range keys {
		if !set[k] {
			t.Errorf("testdata/ok/full.yaml does not set %s", k)
		}
	}
}
