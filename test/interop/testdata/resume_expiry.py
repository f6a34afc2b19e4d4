"""Resume a persistent session with another Session Expiry Interval.

Eclipse Paho for Python, MQTT 5. A subscriber connects with Clean Start 1 and
Session Expiry Interval 99999, subscribes at QoS 2 and disconnects normally; a
publisher sends QoS 0, 1 and 2 messages (one with a Message Expiry Interval);
the subscriber reconnects with Clean Start 0 and no Session Expiry Interval.
Prints one JSON object: Session Present and what arrived.
"""
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

host, port, run = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cid = "py-resumer-" + run


def connected(client, props=None, clean=True):
    done = threading.Event()
    result = {}

    def on_connect(c, userdata, flags, rc, properties=None):
        result["present"] = bool(flags.get("session present"))
        result["rc"] = int(rc.value) if hasattr(rc, "value") else int(rc)
        done.set()

    client.on_connect = on_connect
    client.connect(host, port, keepalive=30, clean_start=clean, properties=props)
    client.loop_start()
    if not done.wait(5):
        raise SystemExit("no CONNACK")
    return result


sub = mqtt.Client(client_id=cid, protocol=mqtt.MQTTv5)
props = Properties(PacketTypes.CONNECT)
props.SessionExpiryInterval = 99999
connected(sub, props, True)
subscribed = threading.Event()
sub.on_subscribe = lambda *a, **k: subscribed.set()
sub.subscribe("pyresume/#", qos=2)
if not subscribed.wait(5):
    raise SystemExit("no SUBACK")
sub.disconnect()
sub.loop_stop()

pub = mqtt.Client(client_id=cid + "-pub", protocol=mqtt.MQTTv5)
connected(pub)
for qos in (0, 1, 2):
    pub.publish("pyresume/%d" % qos, b"q%d" % qos, qos=qos).wait_for_publish(5)
expiring = Properties(PacketTypes.PUBLISH)
expiring.MessageExpiryInterval = 600
pub.publish("pyresume/e", b"expiring", qos=1, properties=expiring).wait_for_publish(5)

got = []
lock = threading.Lock()


def on_message(c, userdata, msg):
    expiry = getattr(msg.properties, "MessageExpiryInterval", None) if msg.properties else None
    with lock:
        got.append({"topic": msg.topic, "qos": msg.qos, "expiry": expiry})


again = mqtt.Client(client_id=cid, protocol=mqtt.MQTTv5)
again.on_message = on_message
res = connected(again, None, False)  # no Session Expiry Interval: 0 from now on
deadline = time.time() + 5
while time.time() < deadline:
    with lock:
        if len(got) >= 3:
            break
    time.sleep(0.01)
time.sleep(0.2)  # anything more that would arrive
again.disconnect()
again.loop_stop()
pub.disconnect()
pub.loop_stop()
with lock:
    print(json.dumps({"present": res["present"], "got": got}))
