package deploy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Workload is a pod template and the object that owns it.
type Workload struct {
	Object   *Object
	Selector *metav1.LabelSelector // nil for Jobs (the API server generates theirs)
	Template *corev1.PodTemplateSpec
	// Replicas is the replica count the object sets, nil when left unset (to an autoscaler).
	Replicas *int32
	// RunsToCompletion is true for Jobs, whose containers need no probes and no PDB.
	RunsToCompletion bool
}

// Workloads returns the pod-owning objects among objs.
func Workloads(objs []*Object) []Workload {
	var out []Workload
	for _, o := range objs {
		switch t := o.Typed.(type) {
		case *appsv1.Deployment:
			out = append(out, Workload{Object: o, Selector: t.Spec.Selector, Template: &t.Spec.Template, Replicas: t.Spec.Replicas})
		case *appsv1.StatefulSet:
			out = append(out, Workload{Object: o, Selector: t.Spec.Selector, Template: &t.Spec.Template, Replicas: t.Spec.Replicas})
		case *appsv1.DaemonSet:
			out = append(out, Workload{Object: o, Selector: t.Spec.Selector, Template: &t.Spec.Template})
		case *batchv1.Job:
			out = append(out, Workload{Object: o, Template: &t.Spec.Template, RunsToCompletion: true})
		case *batchv1.CronJob:
			out = append(out, Workload{Object: o, Template: &t.Spec.JobTemplate.Spec.Template, RunsToCompletion: true})
		}
	}
	return out
}

// CheckPolicies holds rendered objects to the project's rules and returns every violation:
//   - names and labels are valid Kubernetes names and label values;
//   - every container sets CPU and memory requests and limits, runs as a non-root user with no privilege
//     escalation, all capabilities dropped, a read-only root filesystem and the RuntimeDefault seccomp profile,
//     and uses a tagged (never `latest`) or digest-pinned image;
//   - every long-running container has liveness and readiness probes whose named ports exist;
//   - pods use no host namespaces or hostPath volumes and mount no service account token;
//   - every Deployment and StatefulSet has a PodDisruptionBudget selecting its pods, and its selector matches its
//     template; autoscaled workloads leave replicas to their HorizontalPodAutoscaler;
//   - references resolve: ConfigMaps and ServiceAccounts used by pods, Services' selectors and target ports,
//     StatefulSets' governing Services, HPA targets, Ingress backends, ServiceMonitor selectors and ports;
//   - every namespace with pods has a default-deny NetworkPolicy, and every pod is also selected by a policy
//     written for it (a pod selector, both ingress and egress governed).
func CheckPolicies(objs []*Object) error {
	var errs []error
	add := func(o *Object, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s (%s): %s", o.ID(), o.Source, fmt.Sprintf(format, args...)))
	}
	for _, o := range objs {
		checkNames(o, add)
	}
	workloads := Workloads(objs)
	for _, w := range workloads {
		checkWorkload(w, objs, add)
	}
	checkDisruptionBudgets(workloads, objs, add)
	checkAutoscalers(workloads, objs, add)
	checkServices(workloads, objs, add)
	checkIngresses(objs, add)
	checkServiceMonitors(objs, add)
	checkNetworkPolicyCoverage(workloads, objs, add)
	return errors.Join(errs...)
}

type addFunc func(o *Object, format string, args ...any)

func checkNames(o *Object, add addFunc) {
	var msgs []string
	if o.Kind == "Service" {
		msgs = validation.IsDNS1035Label(o.Name)
	} else {
		msgs = validation.IsDNS1123Subdomain(o.Name)
	}
	for _, m := range msgs {
		add(o, "invalid name: %s", m)
	}
	meta, _ := o.Raw["metadata"].(map[string]any)
	lbls, _ := meta["labels"].(map[string]any)
	for k, v := range lbls {
		for _, m := range validation.IsQualifiedName(k) {
			add(o, "invalid label key %q: %s", k, m)
		}
		s, _ := v.(string)
		for _, m := range validation.IsValidLabelValue(s) {
			add(o, "invalid value of label %q: %s", k, m)
		}
	}
}

func checkWorkload(w Workload, objs []*Object, add addFunc) {
	o, spec := w.Object, &w.Template.Spec
	if w.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(w.Selector)
		if err != nil {
			add(o, "invalid selector: %v", err)
		} else if sel.Empty() || !sel.Matches(labels.Set(w.Template.Labels)) {
			add(o, "selector %s does not match the pod template's labels", sel)
		}
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		add(o, "pods use host namespaces")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		add(o, "pods mount a service account token (set automountServiceAccountToken: false)")
	}
	if sa := spec.ServiceAccountName; sa != "" && sa != "default" && find(objs, "ServiceAccount", o.Namespace, sa) == nil {
		add(o, "service account %q is not part of the render", sa)
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			add(o, "volume %q is a hostPath", v.Name)
		}
	}
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	containers := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for i := range containers {
		c := &containers[i]
		checkContainer(o, c, psc, !w.RunsToCompletion, add)
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil && (ef.ConfigMapRef.Optional == nil || !*ef.ConfigMapRef.Optional) &&
				find(objs, "ConfigMap", o.Namespace, ef.ConfigMapRef.Name) == nil {
				add(o, "container %q: ConfigMap %q is not part of the render", c.Name, ef.ConfigMapRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				cm := find(objs, "ConfigMap", o.Namespace, e.ValueFrom.ConfigMapKeyRef.Name)
				if cm == nil {
					add(o, "container %q: env %s: ConfigMap %q is not part of the render", c.Name, e.Name, e.ValueFrom.ConfigMapKeyRef.Name)
				}
			}
		}
	}
}

func checkContainer(o *Object, c *corev1.Container, psc *corev1.PodSecurityContext, longRunning bool, add addFunc) {
	if msg := imageProblem(c.Image); msg != "" {
		add(o, "container %q: image %q: %s", c.Name, c.Image, msg)
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[res]; !ok || q.IsZero() {
			add(o, "container %q: no %s request", c.Name, res)
		}
		if q, ok := c.Resources.Limits[res]; !ok || q.IsZero() {
			add(o, "container %q: no %s limit", c.Name, res)
		}
	}
	if longRunning {
		if c.LivenessProbe == nil {
			add(o, "container %q: no liveness probe", c.Name)
		}
		if c.ReadinessProbe == nil {
			add(o, "container %q: no readiness probe", c.Name)
		}
	}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil {
			continue
		}
		var port *intstr.IntOrString
		switch {
		case p.HTTPGet != nil:
			port = &p.HTTPGet.Port
		case p.TCPSocket != nil:
			port = &p.TCPSocket.Port
		}
		if port != nil && port.Type == intstr.String && !hasPortName(c, port.StrVal) {
			add(o, "container %q: %s probe names port %q, which the container does not declare", c.Name, name, port.StrVal)
		}
	}
	sc := c.SecurityContext
	if sc == nil {
		add(o, "container %q: no securityContext", c.Name)
		return
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		add(o, "container %q: allowPrivilegeEscalation is not false", c.Name)
	}
	if sc.Privileged != nil && *sc.Privileged {
		add(o, "container %q: privileged", c.Name)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		add(o, "container %q: readOnlyRootFilesystem is not true", c.Name)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, corev1.Capability("ALL")) {
		add(o, "container %q: capabilities do not drop ALL", c.Name)
	} else if len(sc.Capabilities.Add) > 0 {
		add(o, "container %q: adds capabilities %v", c.Name, sc.Capabilities.Add)
	}
	nonRoot := firstBool(sc.RunAsNonRoot, psc.RunAsNonRoot)
	if nonRoot == nil || !*nonRoot {
		add(o, "container %q: runAsNonRoot is not true", c.Name)
	}
	if uid := firstInt64(sc.RunAsUser, psc.RunAsUser); uid != nil && *uid == 0 {
		add(o, "container %q: runs as uid 0", c.Name)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		add(o, "container %q: seccomp profile is not RuntimeDefault", c.Name)
	}
}

// imageProblem explains what is wrong with an image reference, or returns "".
func imageProblem(image string) string {
	if image == "" {
		return "empty"
	}
	if strings.Contains(image, "@sha256:") {
		return ""
	}
	lastSlash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= lastSlash {
		return "no tag (it would pull latest)"
	}
	if image[colon+1:] == "latest" {
		return "the latest tag is mutable"
	}
	return ""
}

func hasPortName(c *corev1.Container, name string) bool {
	for _, p := range c.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

func firstBool(vals ...*bool) *bool {
	for _, v := range vals {
		if v != nil {
			return v
		}
	}
	return nil
}

func firstInt64(vals ...*int64) *int64 {
	for _, v := range vals {
		if v != nil {
			return v
		}
	}
	return nil
}

func find(objs []*Object, kind, namespace, name string) *Object {
	for _, o := range objs {
		if o.Kind == kind && o.Namespace == namespace && o.Name == name {
			return o
		}
	}
	return nil
}

func selects(sel *metav1.LabelSelector, lbls map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(lbls))
}

func checkDisruptionBudgets(workloads []Workload, objs []*Object, add addFunc) {
	for _, w := range workloads {
		if w.RunsToCompletion {
			continue
		}
		covered := 0
		for _, o := range objs {
			pdb, ok := o.Typed.(*policyv1.PodDisruptionBudget)
			if ok && o.Namespace == w.Object.Namespace && pdb.Spec.Selector != nil && selects(pdb.Spec.Selector, w.Template.Labels) {
				covered++
			}
		}
		switch {
		case covered == 0:
			add(w.Object, "no PodDisruptionBudget selects its pods")
		case covered > 1:
			add(w.Object, "%d PodDisruptionBudgets select its pods (the eviction API refuses to evict them)", covered)
		}
	}
	for _, o := range objs {
		pdb, ok := o.Typed.(*policyv1.PodDisruptionBudget)
		if !ok {
			continue
		}
		if (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
			add(o, "set exactly one of minAvailable and maxUnavailable")
		}
		matched := false
		for _, w := range workloads {
			if pdb.Spec.Selector != nil && w.Object.Namespace == o.Namespace && selects(pdb.Spec.Selector, w.Template.Labels) {
				matched = true
			}
		}
		if !matched {
			add(o, "selects no pods of the render")
		}
	}
}

func checkAutoscalers(workloads []Workload, objs []*Object, add addFunc) {
	for _, o := range objs {
		hpa, ok := o.Typed.(*autoscalingv2.HorizontalPodAutoscaler)
		if !ok {
			continue
		}
		ref := hpa.Spec.ScaleTargetRef
		target := find(objs, ref.Kind, o.Namespace, ref.Name)
		if target == nil || target.APIVersion != ref.APIVersion {
			add(o, "scale target %s %s/%s is not part of the render", ref.APIVersion, ref.Kind, ref.Name)
			continue
		}
		if hpa.Spec.MinReplicas != nil && *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas {
			add(o, "minReplicas %d above maxReplicas %d", *hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
		}
		if len(hpa.Spec.Metrics) == 0 {
			add(o, "no metrics")
		}
		for _, w := range workloads {
			if w.Object == target {
				if w.Replicas != nil {
					add(target, "sets replicas although %s scales it (every apply would reset the count)", o.ID())
				}
				for _, c := range w.Template.Spec.Containers {
					if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
						add(target, "container %q has no CPU request for the autoscaler's utilization target", c.Name)
					}
				}
			}
		}
	}
}

func checkServices(workloads []Workload, objs []*Object, add addFunc) {
	for _, o := range objs {
		svc, ok := o.Typed.(*corev1.Service)
		if !ok {
			continue
		}
		if len(svc.Spec.Selector) == 0 {
			add(o, "no selector")
			continue
		}
		var pods []Workload
		for _, w := range workloads {
			if w.Object.Namespace == o.Namespace && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.Template.Labels)) {
				pods = append(pods, w)
			}
		}
		if len(pods) == 0 {
			add(o, "selector %v matches no pods of the render", svc.Spec.Selector)
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.Type != intstr.String {
				continue
			}
			for _, w := range pods {
				found := false
				for i := range w.Template.Spec.Containers {
					if hasPortName(&w.Template.Spec.Containers[i], p.TargetPort.StrVal) {
						found = true
					}
				}
				if !found {
					add(o, "port %q targets %q, which %s does not declare", p.Name, p.TargetPort.StrVal, w.Object.ID())
				}
			}
		}
	}
	for _, o := range objs {
		sts, ok := o.Typed.(*appsv1.StatefulSet)
		if !ok {
			continue
		}
		gov := find(objs, "Service", o.Namespace, sts.Spec.ServiceName)
		if gov == nil {
			add(o, "governing Service %q is not part of the render", sts.Spec.ServiceName)
		} else if gov.Typed.(*corev1.Service).Spec.ClusterIP != corev1.ClusterIPNone {
			add(o, "governing Service %q is not headless", sts.Spec.ServiceName)
		}
	}
}

func servicePort(objs []*Object, namespace, name string, port networkingv1.ServiceBackendPort) bool {
	o := find(objs, "Service", namespace, name)
	if o == nil {
		return false
	}
	for _, p := range o.Typed.(*corev1.Service).Spec.Ports {
		if (port.Name != "" && p.Name == port.Name) || (port.Number != 0 && p.Port == port.Number) {
			return true
		}
	}
	return false
}

func checkIngresses(objs []*Object, add addFunc) {
	for _, o := range objs {
		ing, ok := o.Typed.(*networkingv1.Ingress)
		if !ok {
			continue
		}
		for _, r := range ing.Spec.Rules {
			for _, msg := range validation.IsDNS1123Subdomain(strings.TrimPrefix(r.Host, "*.")) {
				add(o, "host %q: %s", r.Host, msg)
			}
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				if b := p.Backend.Service; b == nil || !servicePort(objs, o.Namespace, b.Name, b.Port) {
					add(o, "path %q of %q: backend Service or port is not part of the render", p.Path, r.Host)
				}
			}
		}
	}
}

func checkServiceMonitors(objs []*Object, add addFunc) {
	for _, o := range objs {
		sm, ok := o.Typed.(*monitoringv1.ServiceMonitor)
		if !ok {
			continue
		}
		var matched []*corev1.Service
		for _, so := range objs {
			if svc, ok := so.Typed.(*corev1.Service); ok && so.Namespace == o.Namespace && selects(&sm.Spec.Selector, svc.Labels) {
				matched = append(matched, svc)
			}
		}
		if len(matched) == 0 {
			add(o, "selects no Service of the render")
		}
		for _, ep := range sm.Spec.Endpoints {
			for _, svc := range matched {
				found := false
				for _, p := range svc.Spec.Ports {
					if ep.Port != "" && p.Name == ep.Port {
						found = true
					}
				}
				if !found {
					add(o, "endpoint port %q is not a port of Service %s", ep.Port, svc.Name)
				}
			}
		}
	}
}

func checkNetworkPolicyCoverage(workloads []Workload, objs []*Object, add addFunc) {
	var policies []*Object
	for _, o := range objs {
		if _, ok := o.Typed.(*networkingv1.NetworkPolicy); ok {
			policies = append(policies, o)
		}
	}
	denied := map[string]bool{}
	for _, o := range policies {
		np := o.Typed.(*networkingv1.NetworkPolicy)
		if isDefaultDeny(np) {
			denied[o.Namespace] = true
		}
	}
	for _, w := range workloads {
		ns := w.Object.Namespace
		if !denied[ns] {
			add(w.Object, "no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules) in its namespace")
		}
		covered := false
		for _, o := range policies {
			np := o.Typed.(*networkingv1.NetworkPolicy)
			if o.Namespace == ns && !isDefaultDeny(np) && len(np.Spec.PodSelector.MatchLabels)+len(np.Spec.PodSelector.MatchExpressions) > 0 &&
				slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) &&
				slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) &&
				selects(&np.Spec.PodSelector, w.Template.Labels) {
				covered = true
			}
		}
		if !covered {
			add(w.Object, "no NetworkPolicy is written for its pods (one selecting them that governs both ingress and egress)")
		}
	}
}

func isDefaultDeny(np *networkingv1.NetworkPolicy) bool {
	s := np.Spec
	return len(s.PodSelector.MatchLabels) == 0 && len(s.PodSelector.MatchExpressions) == 0 &&
		slices.Contains(s.PolicyTypes, networkingv1.PolicyTypeIngress) &&
		slices.Contains(s.PolicyTypes, networkingv1.PolicyTypeEgress) &&
		len(s.Ingress) == 0 && len(s.Egress) == 0
}
