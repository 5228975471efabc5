// Command glassbox-health prints what the two GitOps tools say about Kubernetes objects:
//
//   - Flux: sigs.k8s.io/cli-utils kstatus (status.Compute), the library Flux's health checks use;
//   - Argo CD: an Argo CD custom health script (Lua), run under github.com/yuin/gopher-lua the way
//     Argo CD runs resource.customizations health scripts (argo.go): the script named by --lua, or
//     the one Argo CD would pick for the object's group/kind from an argocd-cm ConfigMap
//     (--argocd-cm, argocdcm.go; no script there: argo is "" as Argo CD leaves it out of health).
//
// Input: Kubernetes objects as JSON (`kubectl get -o json`: one object, a List, or several JSON
// values one after another), from the files named on the command line or from stdin.
// Output: one JSON object per input object and line:
//
//	{"kind":..., "namespace":..., "name":..., "kstatus":..., "kstatusMessage":..., "argo":..., "argoMessage":...}
//
// Exit status 1 when an object could not be evaluated by either tool (the line still says why).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// Result is one output line.
type Result struct {
	Kind           string `json:"kind"`
	Namespace      string `json:"namespace,omitempty"`
	Name           string `json:"name"`
	KStatus        string `json:"kstatus"`
	KStatusMessage string `json:"kstatusMessage"`
	Argo           string `json:"argo"`
	ArgoMessage    string `json:"argoMessage"`
}

func main() {
	script := flag.String("lua", "", "Argo CD health script (Lua) to run for every object")
	cmFile := flag.String("argocd-cm", "", "argocd-cm ConfigMap (YAML) to take each object's health script from")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s (--lua HEALTH.lua | --argocd-cm ARGOCD-CM.yaml) [FILE.json ...]  (no FILE: stdin)\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if (*script == "") == (*cmFile == "") {
		flag.Usage()
		os.Exit(2)
	}
	scripts, err := loadScripts(*script, *cmFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	objs, err := readAll(flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	out.SetEscapeHTML(false)
	failed := false
	for _, obj := range objs {
		res, ok := evaluate(obj, scripts(obj))
		failed = failed || !ok
		if err := out.Encode(res); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// loadScripts returns, for an object, the health script Argo CD would run for it.
func loadScripts(luaFile, cmFile string) (func(*unstructured.Unstructured) Override, error) {
	if luaFile != "" {
		data, err := os.ReadFile(luaFile)
		if err != nil {
			return nil, err
		}
		return func(*unstructured.Unstructured) Override { return Override{HealthLua: string(data)} }, nil
	}
	overrides, err := loadArgoCDConfigMap(cmFile)
	if err != nil {
		return nil, err
	}
	return func(obj *unstructured.Unstructured) Override { return scriptFor(overrides, obj) }, nil
}

// evaluate asks both tools about one object; ok is false when either could not answer.
func evaluate(obj *unstructured.Unstructured, script Override) (Result, bool) {
	res := Result{Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
	ok := true
	if ks, err := status.Compute(obj); err != nil {
		res.KStatus, res.KStatusMessage, ok = "Error", err.Error(), false
	} else {
		res.KStatus, res.KStatusMessage = ks.Status.String(), ks.Message
	}
	if script.HealthLua == "" {
		res.ArgoMessage = "no health script for this kind: Argo CD leaves it out of the application's health"
	} else if hs, err := argoHealth(obj, script); err != nil {
		// Argo CD shows a script error as health Unknown with the error as the message.
		res.Argo, res.ArgoMessage, ok = "Unknown", err.Error(), false
	} else {
		res.Argo, res.ArgoMessage = hs.Status, hs.Message
	}
	return res, ok
}

// readAll decodes every object in the named files (or stdin), expanding Lists.
func readAll(files []string) ([]*unstructured.Unstructured, error) {
	var inputs []io.Reader
	if len(files) == 0 {
		inputs = append(inputs, os.Stdin)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, bytes.NewReader(data))
	}
	var objs []*unstructured.Unstructured
	for _, in := range inputs {
		dec := json.NewDecoder(in)
		for {
			var raw json.RawMessage
			if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("reading JSON: %w", err)
			}
			got, err := decode(raw)
			if err != nil {
				return nil, err
			}
			objs = append(objs, got...)
		}
	}
	return objs, nil
}

// decode turns one JSON value into objects the way client-go's unstructured decoding does
// (integers become int64, as in the objects both tools receive from the apiserver).
func decode(raw []byte) ([]*unstructured.Unstructured, error) {
	var list unstructured.UnstructuredList
	if probe := (&unstructured.Unstructured{}); probe.UnmarshalJSON(raw) == nil && !probe.IsList() {
		return []*unstructured.Unstructured{probe}, nil
	}
	if err := list.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object or List (apiVersion and kind are required): %w", err)
	}
	out := make([]*unstructured.Unstructured, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out, nil
}
