package deploy_test

import (
	"testing"
	"time"

	knative "handler/function"
	"handler/function/function"
	"handler/function/function/api"
)

// waitFits reports whether a wait of CANDADO_MAX_WAIT ends api.Margin before
// deadline, so that every waiting acquire gets a whole answer.
func waitFits(maxWait, deadline time.Duration) bool {
	return deadline <= 0 || maxWait <= deadline-api.Margin(deadline)
}

// TestFuncYAMLWaitFitsFuncGo: a Knative Function runs on func-go, whose
// server cuts every answer at 30s; func.yaml's CANDADO_MAX_WAIT must end its
// margin before that, or every longer wait would be cut (to 25s) anyway.
func TestFuncYAMLWaitFitsFuncGo(t *testing.T) {
	f := readStrict[funcYAML](t, "../func.yaml")
	env := map[string]string{}
	for _, e := range f.Run.Envs {
		if e.Name != nil && e.Value != nil {
			env[*e.Name] = *e.Value
		}
	}
	wait := maxWait(t, env)
	if !waitFits(wait, knative.FuncGoTimeout) {
		t.Errorf("func.yaml CANDADO_MAX_WAIT = %s: func-go cuts answers at %s, so waits must end by %s",
			wait, knative.FuncGoTimeout, knative.FuncGoTimeout-api.Margin(knative.FuncGoTimeout))
	}
}

// TestStackYMLTimeoutsFitMaxWait: the OpenFaaS template's server and
// of-watchdog cut at write_timeout and exec_timeout (10s when unset), read as
// the entry reads them; CANDADO_MAX_WAIT must end its margin before the
// shorter, and read_timeout must be set (it bounds a slow body).
func TestStackYMLTimeoutsFitMaxWait(t *testing.T) {
	s := readStrict[stackYAML](t, "../stack.yml")
	fn, ok := s.Functions[appName]
	if !ok {
		t.Fatalf("stack.yml: no function %s", appName)
	}
	env := fn.Environment
	deadline := function.OpenFaaSDeadline(func(k string) string { return env[k] })
	if wait := maxWait(t, env); !waitFits(wait, deadline) {
		t.Errorf("stack.yml CANDADO_MAX_WAIT = %s: write_timeout/exec_timeout cut at %s, so waits must end by %s",
			wait, deadline, deadline-api.Margin(deadline))
	}
	if deadline == 0 {
		t.Errorf("stack.yml turns write_timeout and exec_timeout off: nothing bounds a stuck call")
	}
	if _, ok := env["read_timeout"]; !ok {
		t.Errorf("stack.yml: read_timeout unset (10s): set it so that it is explicit")
	}
}

// TestKnativeServiceTimeoutFitsMaxWait: Knative Serving cuts a request at the
// revision's timeoutSeconds; the Service's CANDADO_MAX_WAIT must end its
// margin before that.
func TestKnativeServiceTimeoutFitsMaxWait(t *testing.T) {
	n := 0
	for _, p := range candadoPods(t) {
		if p.kn == nil {
			continue
		}
		n++
		rs := p.kn.Spec.Template.Spec
		timeout := 300 * time.Second // Knative Serving's default
		if rs.TimeoutSeconds != nil {
			timeout = time.Duration(*rs.TimeoutSeconds) * time.Second
		}
		if wait := maxWait(t, envMap(candadoContainer(t, p))); !waitFits(wait, timeout) {
			t.Errorf("%s: CANDADO_MAX_WAIT = %s does not end %s before timeoutSeconds (%s)", p.where, wait, api.Margin(timeout), timeout)
		}
	}
	if n == 0 {
		t.Fatal("no Knative Service named candado")
	}
}

// TestWaitFits checks the rule itself on the cases that matter.
func TestWaitFits(t *testing.T) {
	for _, tc := range []struct {
		wait, deadline time.Duration
		fits           bool
	}{
		{60 * time.Second, 30 * time.Second, false}, // func.yaml before: func-go cut it
		{25 * time.Second, 30 * time.Second, true},
		{26 * time.Second, 30 * time.Second, false},
		{60 * time.Second, 10 * time.Second, false}, // stack.yml without timeouts
		{8 * time.Second, 10 * time.Second, true},
		{60 * time.Second, 75 * time.Second, true},
		{time.Hour, 0, true},
	} {
		if got := waitFits(tc.wait, tc.deadline); got != tc.fits {
			t.Errorf("wait %s, deadline %s: fits %v, want %v", tc.wait, tc.deadline, got, tc.fits)
		}
	}
}
