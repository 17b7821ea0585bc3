package harness

import (
	"fmt"
	"strconv"
	"strings"
)

// IKESA is one IKE_SA as swanctl --list-sas reports it.
type IKESA struct {
	Name        string
	UniqueID    string
	State       string // CONNECTING, ESTABLISHED, REKEYING, DELETING, ...
	LocalHost   string
	LocalPort   int
	RemoteHost  string
	RemotePort  int
	LocalID     string
	RemoteID    string
	Initiator   bool
	SPIi, SPIr  string // hex
	NATLocal    bool   // this end is behind NAT
	NATRemote   bool   // the peer is behind NAT
	EncrAlg     string
	EncrKeySize int
	IntegAlg    string
	PRFAlg      string
	DHGroup     string
	Children    []ChildSA
	// Raw holds every key = value of the section.
	Raw map[string]string
}

// ChildSA is one CHILD_SA of an IKESA.
type ChildSA struct {
	Name        string
	UniqueID    string
	ReqID       string
	State       string // INSTALLED, REKEYING, REKEYED, DELETING, ...
	Mode        string // TUNNEL, TRANSPORT
	Protocol    string // ESP, AH
	Encap       bool   // ESP in UDP
	SPIIn       string
	SPIOut      string
	EncrAlg     string
	EncrKeySize int
	IntegAlg    string
	BytesIn     uint64
	BytesOut    uint64
	PacketsIn   uint64
	PacketsOut  uint64
	LocalTS     []string
	RemoteTS    []string
	Raw         map[string]string
}

// viciNode is a section of swanctl's --pretty dump.
type viciNode struct {
	name     string
	kv       map[string]string
	lists    map[string][]string
	sections []*viciNode
}

// parseViciPretty parses swanctl's --pretty output: "name {" opens a
// section, "}" closes it, "key = value" sets a value, "key = [" ... "]"
// is a list with one item per line. It returns the top-level sections.
func parseViciPretty(out string) ([]*viciNode, error) {
	root := &viciNode{}
	stack := []*viciNode{root}
	var listNode *viciNode // the section whose list is open
	var listName string
	for n, raw := range strings.Split(out, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		top := stack[len(stack)-1]
		switch {
		case listNode != nil && line == "]":
			listNode = nil
		case listNode != nil:
			listNode.lists[listName] = append(listNode.lists[listName], line)
		case line == "}":
			if len(stack) == 1 {
				return nil, fmt.Errorf("line %d: unbalanced }", n+1)
			}
			stack = stack[:len(stack)-1]
		case strings.HasSuffix(line, " {"):
			child := &viciNode{name: strings.TrimSuffix(line, " {"), kv: map[string]string{}, lists: map[string][]string{}}
			top.sections = append(top.sections, child)
			stack = append(stack, child)
		case strings.HasSuffix(line, " ["):
			if top.lists == nil {
				return nil, fmt.Errorf("line %d: list outside a section", n+1)
			}
			listNode, listName = top, strings.TrimSuffix(strings.TrimSuffix(line, " ["), " =")
			top.lists[listName] = []string{}
		default:
			k, v, ok := strings.Cut(line, " = ")
			if !ok || top.kv == nil {
				return nil, fmt.Errorf("line %d: unexpected %q", n+1, line)
			}
			top.kv[k] = v
		}
	}
	if len(stack) != 1 || listNode != nil {
		return nil, fmt.Errorf("unterminated section or list")
	}
	return root.sections, nil
}

// ParseListSAs parses "swanctl --list-sas --pretty" output.
func ParseListSAs(out string) ([]IKESA, error) {
	top, err := parseViciPretty(out)
	if err != nil {
		return nil, fmt.Errorf("swanctl --list-sas output: %v", err)
	}
	var sas []IKESA
	for _, ev := range top {
		if ev.name != "list-sa event" {
			continue
		}
		for _, s := range ev.sections {
			sas = append(sas, ikeSAFrom(s))
		}
	}
	return sas, nil
}

func ikeSAFrom(n *viciNode) IKESA {
	kv := n.kv
	sa := IKESA{
		Name: n.name, UniqueID: kv["uniqueid"], State: kv["state"],
		LocalHost: kv["local-host"], RemoteHost: kv["remote-host"],
		LocalPort: atoi(kv["local-port"]), RemotePort: atoi(kv["remote-port"]),
		LocalID: kv["local-id"], RemoteID: kv["remote-id"],
		Initiator: kv["initiator"] == "yes",
		SPIi:      kv["initiator-spi"], SPIr: kv["responder-spi"],
		NATLocal: kv["nat-local"] == "yes", NATRemote: kv["nat-remote"] == "yes",
		EncrAlg: kv["encr-alg"], EncrKeySize: atoi(kv["encr-keysize"]),
		IntegAlg: kv["integ-alg"], PRFAlg: kv["prf-alg"], DHGroup: kv["dh-group"],
		Raw: kv,
	}
	for _, s := range n.sections {
		if s.name != "child-sas" {
			continue
		}
		for _, c := range s.sections {
			ck := c.kv
			sa.Children = append(sa.Children, ChildSA{
				Name: ck["name"], UniqueID: ck["uniqueid"], ReqID: ck["reqid"], State: ck["state"],
				Mode: ck["mode"], Protocol: ck["protocol"], Encap: ck["encap"] == "yes",
				SPIIn: ck["spi-in"], SPIOut: ck["spi-out"],
				EncrAlg: ck["encr-alg"], EncrKeySize: atoi(ck["encr-keysize"]), IntegAlg: ck["integ-alg"],
				BytesIn: atou(ck["bytes-in"]), BytesOut: atou(ck["bytes-out"]),
				PacketsIn: atou(ck["packets-in"]), PacketsOut: atou(ck["packets-out"]),
				LocalTS: c.lists["local-ts"], RemoteTS: c.lists["remote-ts"],
				Raw: ck,
			})
		}
	}
	return sa
}

func atoi(s string) int {
	v, _ := strconv.Atoi(s)
	return v
}

func atou(s string) uint64 {
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}
