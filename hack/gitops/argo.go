package main

// Argo CD's way of running a custom health script, rebuilt on the same libraries it embeds
// (github.com/yuin/gopher-lua, layeh.com/gopher-json) so a script that passes here passes there.
// What Argo CD v3 does (util/lua/lua.go and gitops-engine's health package), step by step:
//
//  1. An object with a deletionTimestamp is Progressing "Pending deletion"; no script runs.
//  2. A fresh Lua state without the standard libraries (unless the override's useOpenLibs is true),
//     then package, base and table are opened, plus a "safe" os with time() and date(). So by
//     default no string library: string.format and ("x"):sub() are nil.
//  3. The object becomes the global `obj`: maps are tables keyed by field name, lists are tables
//     with 1-based indexes (appended in order), numbers are Lua numbers, null is nil.
//  4. The script runs with a one-second deadline; the value it returns must be a table (or nil).
//  5. That table is encoded to JSON with gopher-json and decoded into {status, message}; a status
//     that is not one of Argo CD's health codes becomes Unknown "Lua returned an invalid health status".
//
// This helper leaves out the safe os library (glassbox's script does not use it), so a script
// calling os.time() fails here although Argo CD would run it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	luajson "layeh.com/gopher-json"
)

// Health is what Argo CD records for a resource.
type Health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

var healthCodes = map[string]bool{
	"Unknown": true, "Progressing": true, "Healthy": true, "Suspended": true, "Degraded": true, "Missing": true,
}

const scriptDeadline = time.Second

func argoHealth(obj *unstructured.Unstructured, script Override) (Health, error) {
	if obj.GetDeletionTimestamp() != nil {
		return Health{Status: "Progressing", Message: "Pending deletion"}, nil
	}
	l := lua.NewState(lua.Options{SkipOpenLibs: !script.UseOpenLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return Health{}, fmt.Errorf("opening Lua library %q: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), scriptDeadline)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj.Object))
	if err := l.DoString(script.HealthLua); err != nil {
		var apiErr *lua.ApiError
		if errors.As(err, &apiErr) && apiErr.Type == lua.ApiErrorRun {
			apiErr.StackTrace = "" // as Argo CD shows it
			return Health{}, apiErr
		}
		return Health{}, err
	}
	ret := l.Get(-1)
	switch ret.Type() {
	case lua.LTNil:
		return Health{}, nil
	case lua.LTTable:
	default:
		return Health{}, fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
	data, err := luajson.Encode(ret)
	if err != nil {
		return Health{}, err
	}
	var hs Health
	if err := json.Unmarshal(data, &hs); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Value == "array" { // an empty table encodes as []
			return Health{}, nil
		}
		return Health{}, err
	}
	if !healthCodes[hs.Status] {
		return Health{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return hs, nil
}

// toLua converts a decoded JSON value into Lua values as Argo CD does for `obj`.
func toLua(l *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case json.Number:
		return lua.LString(x)
	case float64:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case int:
		return lua.LNumber(x)
	case int32:
		return lua.LNumber(x)
	case []any:
		t := l.CreateTable(len(x), 0)
		for _, item := range x {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(x))
		for k, item := range x {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}
