// Mirror types of the Knative resources the manifests use
// (serving.knative.dev/v1, eventing.knative.dev/v1).

package deploy_test

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// knService mirrors serving.knative.dev/v1 Service.
type knService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              knServiceSpec `json:"spec"`
}

type knServiceSpec struct {
	Template knRevisionTemplate `json:"template"`
	Traffic  []knTrafficTarget  `json:"traffic,omitempty"`
}

type knRevisionTemplate struct {
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              knRevisionSpec `json:"spec"`
}

// knRevisionSpec mirrors Knative's RevisionSpec: a PodSpec plus its own fields.
type knRevisionSpec struct {
	corev1.PodSpec              `json:",inline"`
	ContainerConcurrency        *int64 `json:"containerConcurrency,omitempty"`
	TimeoutSeconds              *int64 `json:"timeoutSeconds,omitempty"`
	ResponseStartTimeoutSeconds *int64 `json:"responseStartTimeoutSeconds,omitempty"`
	IdleTimeoutSeconds          *int64 `json:"idleTimeoutSeconds,omitempty"`
}

type knTrafficTarget struct {
	Tag               string `json:"tag,omitempty"`
	RevisionName      string `json:"revisionName,omitempty"`
	ConfigurationName string `json:"configurationName,omitempty"`
	LatestRevision    *bool  `json:"latestRevision,omitempty"`
	Percent           *int64 `json:"percent,omitempty"`
}

// knBroker mirrors eventing.knative.dev/v1 Broker.
type knBroker struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Config   *knReference    `json:"config,omitempty"`
		Delivery *knDeliverySpec `json:"delivery,omitempty"`
	} `json:"spec"`
}

// knTrigger mirrors eventing.knative.dev/v1 Trigger.
type knTrigger struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Broker string `json:"broker"`
		Filter *struct {
			Attributes map[string]string `json:"attributes,omitempty"`
		} `json:"filter,omitempty"`
		// Filters are the CESQL/dialect filters; the test refuses them.
		Filters    []map[string]any `json:"filters,omitempty"`
		Subscriber knDestination    `json:"subscriber"`
		Delivery   *knDeliverySpec  `json:"delivery,omitempty"`
	} `json:"spec"`
}

type knReference struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

type knDestination struct {
	Ref      *knReference `json:"ref,omitempty"`
	URI      string       `json:"uri,omitempty"`
	CACerts  *string      `json:"CACerts,omitempty"`
	Audience *string      `json:"audience,omitempty"`
}

type knDeliverySpec struct {
	DeadLetterSink *knDestination `json:"deadLetterSink,omitempty"`
	Retry          *int32         `json:"retry,omitempty"`
	Timeout        *string        `json:"timeout,omitempty"`
	BackoffPolicy  *string        `json:"backoffPolicy,omitempty"`
	BackoffDelay   *string        `json:"backoffDelay,omitempty"`
	RetryAfterMax  *string        `json:"retryAfterMax,omitempty"`
}

// kustomization mirrors the part of kustomize.config.k8s.io/v1beta1 used here.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}
