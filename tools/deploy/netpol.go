package deploy

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Endpoint is one side of a network flow: a pod (its namespace and labels, and the namespace's labels) or an
// address outside the cluster.
type Endpoint struct {
	Name            string
	Namespace       string
	NamespaceLabels map[string]string
	PodLabels       map[string]string
	// Ports maps the pod's named container ports to their numbers.
	Ports map[string]int32
	// Addr is set for an address outside the cluster (matched by ipBlock peers only).
	Addr netip.Addr
}

// PodEndpoint describes the pods of a workload as a flow endpoint.
func PodEndpoint(w Workload, namespace string) Endpoint {
	ports := map[string]int32{}
	for _, c := range w.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name != "" {
				ports[p.Name] = p.ContainerPort
			}
		}
	}
	return Endpoint{
		Name:            w.Object.Name,
		Namespace:       namespace,
		NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": namespace},
		PodLabels:       w.Template.Labels,
		Ports:           ports,
	}
}

// NetworkPolicies evaluates Kubernetes NetworkPolicy semantics over a set of policies.
type NetworkPolicies struct {
	policies []*networkingv1.NetworkPolicy
}

// NewNetworkPolicies collects the NetworkPolicies among objs; objects without a namespace are taken to live in
// namespace.
func NewNetworkPolicies(objs []*Object, namespace string) *NetworkPolicies {
	n := &NetworkPolicies{}
	for _, o := range objs {
		if np, ok := o.Typed.(*networkingv1.NetworkPolicy); ok {
			c := np.DeepCopy()
			if c.Namespace == "" {
				c.Namespace = namespace
			}
			n.policies = append(n.policies, c)
		}
	}
	return n
}

// Allowed reports whether a TCP or UDP connection from src to dst on port is allowed: by the egress policies
// selecting src (if any) and by the ingress policies selecting dst (if any).
func (n *NetworkPolicies) Allowed(src, dst Endpoint, protocol corev1.Protocol, port int32) bool {
	return n.egressAllowed(src, dst, protocol, port) && n.ingressAllowed(src, dst, protocol, port)
}

func (n *NetworkPolicies) egressAllowed(src, dst Endpoint, protocol corev1.Protocol, port int32) bool {
	if src.Addr.IsValid() {
		return true // not a pod: no policy governs its egress
	}
	isolated := false
	for _, np := range n.policies {
		if np.Namespace != src.Namespace || !hasType(np, networkingv1.PolicyTypeEgress) || !podSelected(&np.Spec.PodSelector, src.PodLabels) {
			continue
		}
		isolated = true
		for _, rule := range np.Spec.Egress {
			if peersMatch(rule.To, np.Namespace, dst) && portsMatch(rule.Ports, dst, protocol, port) {
				return true
			}
		}
	}
	return !isolated
}

func (n *NetworkPolicies) ingressAllowed(src, dst Endpoint, protocol corev1.Protocol, port int32) bool {
	if dst.Addr.IsValid() {
		return true
	}
	isolated := false
	for _, np := range n.policies {
		if np.Namespace != dst.Namespace || !hasType(np, networkingv1.PolicyTypeIngress) || !podSelected(&np.Spec.PodSelector, dst.PodLabels) {
			continue
		}
		isolated = true
		for _, rule := range np.Spec.Ingress {
			if peersMatch(rule.From, np.Namespace, src) && portsMatch(rule.Ports, dst, protocol, port) {
				return true
			}
		}
	}
	return !isolated
}

func hasType(np *networkingv1.NetworkPolicy, t networkingv1.PolicyType) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		// Defaulted by the API server: Ingress always, Egress when egress rules exist.
		return t == networkingv1.PolicyTypeIngress || (t == networkingv1.PolicyTypeEgress && len(np.Spec.Egress) > 0)
	}
	for _, pt := range np.Spec.PolicyTypes {
		if pt == t {
			return true
		}
	}
	return false
}

func podSelected(sel *metav1.LabelSelector, lbls map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(lbls))
}

// peersMatch applies a rule's peer list: empty matches everything.
func peersMatch(peers []networkingv1.NetworkPolicyPeer, policyNamespace string, e Endpoint) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if p.IPBlock != nil {
			if e.Addr.IsValid() && inBlock(p.IPBlock, e.Addr) {
				return true
			}
			continue
		}
		if e.Addr.IsValid() {
			continue
		}
		if p.NamespaceSelector == nil {
			if e.Namespace != policyNamespace {
				continue
			}
		} else if !podSelected(p.NamespaceSelector, e.NamespaceLabels) {
			continue
		}
		if p.PodSelector == nil || podSelected(p.PodSelector, e.PodLabels) {
			return true
		}
	}
	return false
}

func inBlock(b *networkingv1.IPBlock, addr netip.Addr) bool {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !cidr.Contains(addr) {
		return false
	}
	for _, ex := range b.Except {
		if p, err := netip.ParsePrefix(ex); err == nil && p.Contains(addr) {
			return false
		}
	}
	return true
}

// portsMatch applies a rule's port list to a connection to dst: empty matches every port; named ports resolve
// against the destination pod's container ports.
func portsMatch(ports []networkingv1.NetworkPolicyPort, dst Endpoint, protocol corev1.Protocol, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if proto != protocol {
			continue
		}
		if p.Port == nil {
			return true
		}
		want := p.Port.IntVal
		if p.Port.Type == intstr.String {
			num, ok := dst.Ports[p.Port.StrVal]
			if !ok {
				continue
			}
			want = num
		}
		end := want
		if p.EndPort != nil {
			end = *p.EndPort
		}
		if port >= want && port <= end {
			return true
		}
	}
	return false
}
