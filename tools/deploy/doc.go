// Package deploy renders and checks Marquee's deployment artefacts offline, the way a cluster would see them.
//
// No Kubernetes cluster or registry is reachable where the project is built, so the charts under charts/ are
// rendered through Helm's own Go packages (a client-only dry-run install, as `helm template` does), the
// kustomize tree under k8s/ is built with kustomize's krusty, and every resulting object is decoded strictly
// into the Kubernetes API types (unknown fields, duplicate fields and wrong types fail). Custom resources are
// checked against their schemas: PerconaServerMongoDB against the operator's CRD copied into k8s/crds, the
// prometheus-operator kinds against that project's Go types. Policy checks then hold every workload to the
// project's security, availability and network rules.
package deploy
