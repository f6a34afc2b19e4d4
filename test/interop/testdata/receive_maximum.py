"""Exceed the server's Receive Maximum with QoS 2 publishes.

Eclipse Paho for Python, MQTT 5, allowed more messages in flight than the
server's Receive Maximum: the server must end the connection with DISCONNECT
0x93 [MQTT-3.3.4-9], and the client must receive it rather than a reset.
Prints one JSON object: the reason code on_disconnect saw.
"""
import json
import sys
import threading

import paho.mqtt.client as mqtt

host, port = sys.argv[1], int(sys.argv[2])
c = mqtt.Client(client_id="py-flooder", protocol=mqtt.MQTTv5)
c.max_inflight_messages_set(1000)
c.max_queued_messages_set(0)
connected = threading.Event()
gone = threading.Event()
result = {}
c.on_connect = lambda *a, **k: connected.set()


def on_disconnect(client, userdata, rc, properties=None):
    result["rc"] = int(rc.value) if hasattr(rc, "value") else int(rc)
    result["reason"] = str(rc)
    gone.set()


c.on_disconnect = on_disconnect
c.connect(host, port, keepalive=30, clean_start=True)
c.loop_start()
if not connected.wait(5):
    raise SystemExit("no CONNACK")
payload = b"x" * 65536
for i in range(200):
    if gone.is_set():
        break
    c.publish("pyflood/t", payload, qos=2)
gone.wait(10)
c.loop_stop()
print(json.dumps(result))
