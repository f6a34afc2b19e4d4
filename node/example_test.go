package node_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"

	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/node"
)

// A program runs a whole node in-process: a service on the node subscribes
// through the in-process bus, and a device publishes over MQTT to the port
// the system chose.
func Example() {
	ctx := context.Background()
	cfg := node.Default()
	cfg.MQTT = "127.0.0.1:0"        // any free port; Addr says which
	cfg.WS, cfg.HTTP = "off", "off" // MQTT over TCP only
	cfg.Store = "memory"            // or "disk", with cfg.Data
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close() // stops the listeners, disconnects clients, waits for them
	if err := n.Start(ctx); err != nil {
		log.Fatal(err)
	}

	// A service in the same process.
	service, err := bus.NewLocal(n.Broker(), "billing")
	if err != nil {
		log.Fatal(err)
	}
	defer service.Close()
	readings := make(chan bus.Message, 1)
	service.Subscribe(ctx, "energy/+/meter/+/reading", 1, func(_ context.Context, m bus.Message) { readings <- m })

	// A meter on the network, with Eclipse Paho.
	conn, err := net.Dial("tcp", n.Addr(node.ListenerMQTT).String())
	if err != nil {
		log.Fatal(err)
	}
	meter := paho.NewClient(paho.ClientConfig{Conn: conn})
	if _, err := meter.Connect(ctx, &paho.Connect{ClientID: "el-0042", CleanStart: true, KeepAlive: 30}); err != nil {
		log.Fatal(err)
	}
	meter.Publish(ctx, &paho.Publish{Topic: "energy/campus-b1/meter/el-0042/reading", QoS: 1,
		Payload: []byte(`{"value":12345.6,"unit":"kWh"}`)})
	meter.Disconnect(&paho.Disconnect{})

	m := <-readings
	fmt.Println(m.Topic, string(m.Payload))
	// Output: energy/campus-b1/meter/el-0042/reading {"value":12345.6,"unit":"kWh"}
}
