// Knative Eventing: the broker, triggers and their filters.

package deploy_test

import (
	"os"
	"regexp"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func filterMatches(attrs map[string]string, eventType string) bool {
	v, ok := attrs["type"]
	return !ok || v == "" || v == eventType
}

func TestEventing(t *testing.T) {
	objs := manifests(t, "eventing", false)
	brokers := map[string]bool{}
	for _, b := range ofType[*knBroker](objs) {
		brokers[b.Name] = true
	}
	if !brokers[brokerName] {
		t.Errorf("eventing: no Broker %s", brokerName)
	}
	sinks := map[string]bool{}
	for _, s := range ofType[*knService](objs) {
		sinks["serving.knative.dev/v1/Service/"+s.Name] = true
	}
	for _, s := range ofType[*corev1.Service](objs) {
		sinks["v1/Service/"+s.Name] = true
	}

	byType := map[string]int{}
	for _, tr := range ofType[*knTrigger](objs) {
		where := "Trigger " + tr.Name
		if tr.Spec.Broker != brokerName {
			t.Errorf("%s: broker %q, want %q", where, tr.Spec.Broker, brokerName)
		}
		if len(tr.Spec.Filters) > 0 {
			t.Errorf("%s: uses spec.filters; filter on exact attributes only", where)
		}
		var attrs map[string]string
		if tr.Spec.Filter != nil {
			attrs = tr.Spec.Filter.Attributes
		}
		if len(attrs) != 1 || !slices.Contains(requestTypes, attrs["type"]) {
			t.Errorf("%s: filter %v, want exactly type equal to one of %v", where, attrs, requestTypes)
		}
		byType[attrs["type"]]++
		for _, reply := range replyTypes {
			if filterMatches(attrs, reply) {
				t.Errorf("%s: filter %v matches the reply type %s, which would loop back", where, attrs, reply)
			}
		}
		ref := tr.Spec.Subscriber.Ref
		if ref == nil || ref.APIVersion != "serving.knative.dev/v1" || ref.Kind != "Service" || ref.Name != appName {
			t.Errorf("%s: subscriber %+v, want the Knative Service %s", where, ref, appName)
		}
		if aud := tr.Spec.Subscriber.Audience; aud == nil || *aud != oidcAudience {
			t.Errorf("%s: subscriber.audience %v, want %q so that the broker's OIDC tokens name Candado", where, aud, oidcAudience)
		}
		d := tr.Spec.Delivery
		if d == nil {
			t.Errorf("%s: no delivery policy", where)
			continue
		}
		if d.Retry == nil || *d.Retry != 3 {
			t.Errorf("%s: delivery.retry %v, want 3", where, d.Retry)
		}
		if d.BackoffPolicy == nil || *d.BackoffPolicy != "exponential" {
			t.Errorf("%s: delivery.backoffPolicy %v, want exponential", where, d.BackoffPolicy)
		}
		if d.BackoffDelay == nil || *d.BackoffDelay != "PT0.2S" {
			t.Errorf("%s: delivery.backoffDelay %v, want PT0.2S", where, d.BackoffDelay)
		}
		if dls := d.DeadLetterSink; dls == nil || dls.Ref == nil {
			t.Errorf("%s: no deadLetterSink", where)
		} else if key := dls.Ref.APIVersion + "/" + dls.Ref.Kind + "/" + dls.Ref.Name; !sinks[key] {
			t.Errorf("%s: deadLetterSink %s is not defined in deploy/eventing", where, key)
		}
	}
	// deploy/README tells operators to give Candado the Triggers' audience.
	if doc, err := os.ReadFile("README.md"); err != nil {
		t.Error(err)
	} else if !regexp.MustCompile(`CANDADO_OIDC_AUDIENCE[^\n]*\n\s*value: ` + regexp.QuoteMeta(oidcAudience) + `\n`).Match(doc) {
		t.Errorf("deploy/README.md does not set CANDADO_OIDC_AUDIENCE to the Triggers' audience %q", oidcAudience)
	}
	for _, rt := range requestTypes {
		if byType[rt] != 1 {
			t.Errorf("eventing: want one Trigger for %s, found %d", rt, byType[rt])
		}
	}
	// The filter check itself must catch a catch-all and a loop.
	if !filterMatches(nil, replyTypes[0]) || !filterMatches(map[string]string{"type": replyTypes[1]}, replyTypes[1]) {
		t.Error("filterMatches misses a loop")
	}
}
