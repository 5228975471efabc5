package main

// Health scripts as Argo CD finds them in its argocd-cm ConfigMap (util/settings and util/lua in
// Argo CD v3): `resource.customizations.health.<group>_<kind>` keys, and the `resource.customizations`
// key holding YAML `<group>/<kind>: {health.lua: ..., health.lua.useOpenLibs: ...}` whose keys may
// hold glob wildcards (glassbox's snippet: `glassbox.dev/*`). An exact group/kind key wins over a
// wildcard; the wildcard is matched with github.com/gobwas/glob, as Argo CD matches it.

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/gobwas/glob"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Override is one resource customization's health part.
type Override struct {
	HealthLua   string `json:"health.lua"`
	UseOpenLibs bool   `json:"health.lua.useOpenLibs"`
}

const (
	customizationsKey = "resource.customizations"
	healthKeyPrefix   = "resource.customizations.health."
	openLibsKeyPrefix = "resource.customizations.useOpenLibs."
)

// loadArgoCDConfigMap reads the health overrides of an argocd-cm ConfigMap (YAML or JSON).
func loadArgoCDConfigMap(path string) (map[string]Override, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cm struct {
		Kind string            `json:"kind"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(data, &cm); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if cm.Kind != "ConfigMap" {
		return nil, fmt.Errorf("%s: kind %q, want ConfigMap", path, cm.Kind)
	}
	out := map[string]Override{}
	if v, ok := cm.Data[customizationsKey]; ok {
		if err := yaml.Unmarshal([]byte(v), &out); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, customizationsKey, err)
		}
	}
	for k, v := range cm.Data {
		for prefix, set := range map[string]func(*Override){
			healthKeyPrefix:   func(o *Override) { o.HealthLua = v },
			openLibsKeyPrefix: func(o *Override) { o.UseOpenLibs = v == "true" },
		} {
			if !strings.HasPrefix(k, prefix) {
				continue
			}
			key, err := overrideKey(strings.TrimPrefix(k, prefix))
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", path, k, err)
			}
			o := out[key]
			set(&o)
			out[key] = o
		}
	}
	return out, nil
}

// overrideKey turns "<group>_<kind>" (or "<kind>") into "<group>/<kind>".
func overrideKey(groupKind string) (string, error) {
	parts := strings.Split(groupKind, "_")
	switch {
	case len(parts) == 2:
		return parts[0] + "/" + parts[1], nil
	case len(parts) == 1 && groupKind != "":
		return groupKind, nil
	}
	return "", fmt.Errorf("want <group>_<kind> or <kind>, got %q", groupKind)
}

// scriptFor returns the health script Argo CD would run for the object ("" when none).
func scriptFor(overrides map[string]Override, obj *unstructured.Unstructured) Override {
	gvk := obj.GroupVersionKind()
	key := gvk.Kind
	if gvk.Group != "" {
		key = gvk.Group + "/" + gvk.Kind
	}
	if o, ok := overrides[key]; ok && o.HealthLua != "" {
		return o
	}
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys) // Argo CD takes whichever wildcard it meets first; here, the first in order
	for _, k := range keys {
		g, err := glob.Compile(k)
		if err == nil && g.Match(key) && overrides[k].HealthLua != "" {
			return overrides[k]
		}
	}
	return Override{}
}
