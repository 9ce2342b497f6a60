// Package kstatus checks that BitbucketConnections, as the operator writes them on a real API
// server, read the way Flux and other kstatus users expect (sigs.k8s.io/cli-utils/pkg/kstatus):
// a healthy connection is Current, a revoked token is Failed, a connection whose new
// generation is being checked is InProgress.
//
// It reads the demo (tests/packaging/kstatus.sh brings it up and runs this test):
//
//	KUBECONFIG=target/local-cluster/kubeconfig go test ./...
//
// Without KUBECONFIG it skips. BBCONN_KSTATUS_NAMESPACE (default demo) names the namespace;
// the slow connection (tests/packaging/fixtures/slow.yaml, its silent server running) must
// exist for the InProgress case.
package kstatus

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

var gvr = schema.GroupVersionResource{Group: "bbconn.dev", Version: "v1alpha1", Resource: "bitbucketconnections"}

func client(t *testing.T) (dynamic.NamespaceableResourceInterface, string) {
	t.Helper()
	path := os.Getenv("KUBECONFIG")
	if path == "" {
		t.Skip("KUBECONFIG is not set: run tests/packaging/kstatus.sh, which brings up the demo and sets it")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("kubeconfig %s: %v", path, err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns := os.Getenv("BBCONN_KSTATUS_NAMESPACE")
	if ns == "" {
		ns = "demo"
	}
	return dc.Resource(gvr), ns
}

func get(t *testing.T, api dynamic.NamespaceableResourceInterface, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := api.Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get bitbucketconnection %s/%s: %v", ns, name, err)
	}
	return u
}

func compute(t *testing.T, u *unstructured.Unstructured) *status.Result {
	t.Helper()
	r, err := status.Compute(u)
	if err != nil {
		t.Fatalf("kstatus Compute %s/%s: %v", u.GetNamespace(), u.GetName(), err)
	}
	return r
}

func condition(u *unstructured.Unstructured, typ string) (string, string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]interface{})
		if m["type"] == typ {
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			return s, r
		}
	}
	return "", ""
}

func observed(u *unstructured.Unstructured) int64 {
	g, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	return g
}

func TestHealthyIsCurrent(t *testing.T) {
	api, ns := client(t)
	for _, name := range []string{"ox-scanner", "tfe-vcs", "oci-platform"} {
		u := get(t, api, ns, name)
		if s, _ := condition(u, "Ready"); s != "True" {
			t.Fatalf("%s: Ready=%q, want True (is the demo's operator running?)", name, s)
		}
		r := compute(t, u)
		if r.Status != status.CurrentStatus {
			t.Errorf("%s: kstatus %s (%s), want Current", name, r.Status, r.Message)
		}
		t.Logf("%s/%s: Ready=True -> %s: %s", ns, name, r.Status, r.Message)
	}
}

func TestRevokedTokenIsFailed(t *testing.T) {
	api, ns := client(t)
	for name, cause := range map[string]string{
		"oci-revoked-token": "TokenRevoked",
		"ox-missing-scopes": "InsufficientScopes",
		"oci-port-7990":     "PlainHttpNotAllowed",
	} {
		u := get(t, api, ns, name)
		r := compute(t, u)
		if r.Status != status.FailedStatus {
			t.Errorf("%s: kstatus %s (%s), want Failed", name, r.Status, r.Message)
			continue
		}
		if len(r.Conditions) == 0 || r.Conditions[0].Reason != cause {
			t.Errorf("%s: kstatus conditions %+v, want Stalled with reason %s", name, r.Conditions, cause)
		}
		t.Logf("%s/%s: Stalled=True -> %s: %s", ns, name, r.Status, r.Message)
	}
}

// A transient cause (RateLimited) leaves Ready Unknown and no Stalled: kstatus falls back to
// the Ready condition and reports InProgress, so a pipeline waits rather than fails.
func TestTransientIsInProgress(t *testing.T) {
	api, ns := client(t)
	u := get(t, api, ns, "packaging-ratelimited")
	if s, reason := condition(u, "Ready"); s != "Unknown" || reason != "RateLimited" {
		t.Fatalf("packaging-ratelimited: Ready=%s/%s, want Unknown/RateLimited", s, reason)
	}
	r := compute(t, u)
	if r.Status != status.InProgressStatus {
		t.Errorf("packaging-ratelimited: kstatus %s (%s), want InProgress", r.Status, r.Message)
	}
	t.Logf("%s/packaging-ratelimited: Ready=Unknown -> %s: %s", ns, r.Status, r.Message)
}

// A new generation of a connection whose server never answers (the check takes the connect
// timeout): right after the spec change status.observedGeneration is old, then the operator
// adds Reconciling=True while it checks; kstatus reads both as InProgress.
func TestBeingCheckedIsInProgress(t *testing.T) {
	api, ns := client(t)
	name := "packaging-slow"
	before := get(t, api, ns, name)
	if s, _ := condition(before, "Reconciling"); s == "True" {
		t.Fatalf("%s is already being checked; run again in a few seconds", name)
	}
	// Past the operator's --share-window (10 s) since the last check, so this generation is
	// checked afresh rather than served the last result.
	if last, _, _ := unstructured.NestedString(before.Object, "status", "lastCheckedTime"); last != "" {
		if ts, err := time.Parse(time.RFC3339, last); err == nil {
			if wait := 11*time.Second - time.Since(ts); wait > 0 {
				time.Sleep(wait)
			}
		}
	}
	patch, _ := json.Marshal(map[string]interface{}{"spec": map[string]interface{}{
		"interval": fmt.Sprintf("%dm", 10+time.Now().Unix()%50)}})
	after, err := api.Namespace(ns).Patch(context.Background(), name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gen := after.GetGeneration()
	if gen == before.GetGeneration() {
		t.Fatalf("%s: the spec change did not make a new generation", name)
	}
	sawOld, sawReconciling := false, false
	deadline := time.Now().Add(20 * time.Second)
	for u := after; ; u = get(t, api, ns, name) {
		rec, _ := condition(u, "Reconciling")
		r := compute(t, u)
		switch {
		case rec == "True":
			if r.Status != status.InProgressStatus {
				t.Errorf("Reconciling=True: kstatus %s (%s), want InProgress", r.Status, r.Message)
			}
			if !sawReconciling {
				t.Logf("Reconciling=True (observedGeneration %d, generation %d) -> %s: %s", observed(u), gen, r.Status, r.Message)
			}
			sawReconciling = true
		case observed(u) < gen:
			if r.Status != status.InProgressStatus {
				t.Errorf("observedGeneration %d < generation %d: kstatus %s (%s), want InProgress", observed(u), gen, r.Status, r.Message)
			}
			if !sawOld {
				t.Logf("observedGeneration %d < generation %d -> %s: %s", observed(u), gen, r.Status, r.Message)
			}
			sawOld = true
		default:
			ready, reason := condition(u, "Ready")
			t.Logf("checked: observedGeneration %d, Ready=%s/%s -> %s: %s", observed(u), ready, reason, r.Status, r.Message)
			if !sawOld {
				t.Error("never saw the old observedGeneration after the spec change")
			}
			if !sawReconciling {
				t.Error("never saw Reconciling=True while the new generation was checked")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: generation %d not checked after 20s", name, gen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
