// Package deploy holds Candado's deployment manifests (Knative Serving and
// Eventing, plain Kubernetes, Redis) and, in its tests, the checks that keep
// them, func.yaml, stack.yml and the Dockerfile consistent with the code.
// It has no code of its own.
package deploy
