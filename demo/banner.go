package demo

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/twin/ngsild"
)

// WriteBanner writes what runs where — the node's listeners, the network
// servers' endpoint, the store, the simulated campus — and commands that
// watch its topics. Call it after Start.
func (d *Demo) WriteBanner(w io.Writer) error {
	var b strings.Builder
	m := d.model
	points := len(m.Points) * d.opts.Copies
	copies := ""
	if d.opts.Copies > 1 {
		copies = fmt.Sprintf(", %d copies", d.opts.Copies)
	}
	fmt.Fprintf(&b, "citymesh demo: %s (%d information points%s), simulated from %s at %s, seed %d\n\n",
		m.Name, points, copies, d.opts.Start.In(d.location()).Format(time.RFC3339), d.speedName(), d.opts.Seed)
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	mqttAddr := d.node.Addr(node.ListenerMQTT)
	if mqttAddr != nil {
		fmt.Fprintf(tw, "  citymesh MQTT\tmqtt://%s\tthe city's events; building gateways and the robot publish here\n", mqttAddr)
	}
	if a := d.node.Addr(node.ListenerWS); a != nil {
		fmt.Fprintf(tw, "  MQTT over WebSocket\tws://%s/mqtt\t\n", a)
	}
	if a := d.node.Addr(node.ListenerHTTP); a != nil {
		// The dashboard's pages open MQTT over WebSocket at /mqtt of the
		// same listener.
		fmt.Fprintf(tw, "  dashboard\thttp://%s/\tthe campus in a browser: sign in as a user below (docs/dashboard.md)\n", a)
		fmt.Fprintf(tw, "  HTTP\thttp://%s\t/metrics, /healthz, the robot's pictures at /pictures/\n", a)
		fmt.Fprintf(tw, "  twin\thttp://%s/api/v1/twin/\tevery point's latest state, assets, geometry (openapi.json)\n", a)
		fmt.Fprintf(tw, "  history\thttp://%s%s\tPrometheus query API (PromQL; a Grafana data source URL)\n", a, HistoryPrefix)
		fmt.Fprintf(tw, "  NGSI-LD\thttp://%s%s\tentities and temporal API for FIWARE clients (Smart Data Models)\n", a, ngsild.Prefix)
		kinds := "none in this build"
		if svcs := d.node.Services(); svcs != nil && len(svcs.Runner().Health()) > 0 {
			var names []string
			for _, h := range svcs.Runner().Health() {
				names = append(names, h.Name)
			}
			kinds = strings.Join(names, ", ")
		}
		fmt.Fprintf(tw, "  services\thttp://%s%s\tthe services' health: %s\n", a, node.ServicesPrefix, kinds)
		fmt.Fprintf(tw, "  alarms\thttp://%s%s\tevery open alarm; POST …/{id}/ack and …/{id}/clear\n", a, alarm.APIPrefix)
	}
	ns := d.ns.Addr(node.ListenerMQTT)
	users := d.users
	var servers []string
	for _, a := range m.Applications {
		switch a.Server {
		case campus.TheThingsStack:
			servers = append(servers, "The Things Stack v3/"+a.ApplicationID+"@"+a.TenantID+"/devices/+/up")
		case campus.ChirpStack:
			servers = append(servers, "ChirpStack application/"+a.ApplicationID+"/device/+/event/up")
		}
	}
	fmt.Fprintf(tw, "  network server\tmqtt://%s\tthe LoRaWAN uplinks, read by the connectors: %s\n", ns, strings.Join(servers, "; "))
	store := "in memory"
	if d.node.Config().Store == "disk" {
		store = d.node.Config().Data + "/store"
	}
	fmt.Fprintf(tw, "  store\t%s\t\n", store)
	tw.Flush()

	cred := "" // curl's credentials
	if len(users) > 0 {
		fmt.Fprintf(&b, "\nUsers (new passwords at every start; the dashboard, the HTTP APIs and MQTT; %s):\n\n", filepath.Join(d.opts.Data, UsersFile))
		tw = tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		fmt.Fprintf(tw, "  role\tuser\tpassword\ttenant\n")
		for _, u := range users {
			t := u.Tenant
			if t == "" {
				t = "(all)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", u.Role, u.Name, u.Password, t)
		}
		tw.Flush()
		cred = " -u " + users[0].Name + ":" + users[0].Password
	}

	sub := "citymesh sub" + hostPort(mqttAddr)
	fmt.Fprintf(&b, "\nWatch it (in another terminal):\n\n")
	tw = tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "  %s -t 'vineyard/#' -v\t# the vineyards' LoRaWAN devices: measurements, uplinks, statuses\n", sub)
	fmt.Fprintf(tw, "  %s -t 'energy/+/meter/+/reading' -v\t# every meter's registers, every 15 simulated minutes\n", sub)
	if len(m.Rooms) > 0 {
		r := m.Rooms[len(m.Rooms)/2]
		fmt.Fprintf(tw, "  %s -t '%s' -v\t# one room's values\n", sub, event.Filter(r.Domain, r.Site, r.Kind, r.ID, ""))
	}
	fmt.Fprintf(tw, "  %s -t 'robot/#' -v\t# the patrol robot: positions, checks, pictures\n", sub)
	fmt.Fprintf(tw, "  citymesh sub%s -t 'v3/#' -t 'application/#' -v\t# the network servers' own messages\n", hostPort(ns))
	if a := d.node.Addr(node.ListenerHTTP); a != nil {
		fmt.Fprintf(tw, "  curl -s http://%s/metrics | grep citymesh_connector_uplinks\t# what the connectors did\n", a)
		fmt.Fprintf(tw, "  curl -s%s 'http://%s/api/v1/twin/points?quantity=temperature&limit=3'\t# the twin: latest values\n", cred, a)
		fmt.Fprintf(tw, "  curl -s%s 'http://%s%sentities?type=AgriParcel&options=keyValues'\t# the twin in NGSI-LD\n", cred, a, ngsild.Prefix)
		fmt.Fprintf(tw, "  curl -s%s 'http://%s%s?status=active&severity=critical,major'\t# the alarms the services raised\n", cred, a, alarm.APIPrefix)
	}
	tw.Flush()
	if a := d.node.Addr(node.ListenerHTTP); a != nil {
		// Too long for the column above: its comment goes first.
		fmt.Fprintf(&b, "  # the history, in PromQL:\n  curl -s%s 'http://%s%s/api/v1/query' --data-urlencode 'query=avg by (site) (citymesh_point_value{quantity=\"temperature\"})'\n", cred, a, HistoryPrefix)
	}
	fmt.Fprintf(&b, "\nCtrl-C stops it.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// hostPort returns the -h and -p flags of citymesh sub for addr, leaving
// out the defaults (localhost, 1883).
func hostPort(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	s := ""
	if host != "127.0.0.1" && host != "::1" && host != "localhost" {
		s += " -h " + host
	}
	if port != "1883" {
		s += " -p " + port
	}
	return s
}
