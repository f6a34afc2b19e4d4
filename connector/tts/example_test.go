package tts_test

import (
	"fmt"

	"github.com/citymesh/citymesh/connector/tts"
)

func ExampleDecode() {
	payload := []byte(`{"end_device_ids":{"device_id":"soil-probe-07","application_ids":{"application_id":"vineyard-north"},
		"dev_eui":"A84041000181C61F","dev_addr":"260B1A2C"},"received_at":"2024-10-21T07:15:42.918236421Z",
		"uplink_message":{"session_key_id":"AZK8xW3m0cYb6d8Zq1x2Lw==","f_port":2,"f_cnt":1842,"frm_payload":"zikA8QelCZtuKJA=",
		"settings":{"data_rate":{"lora":{"bandwidth":125000,"spreading_factor":9,"coding_rate":"4/5"}},"frequency":"867500000"}}}`)
	topic, msg, err := tts.Decode("v3/vineyard-north@ttn/devices/soil-probe-07/up", payload)
	if err != nil {
		fmt.Println(err)
		return
	}
	up := msg.Uplink
	fmt.Println(topic.TenantID, msg.EndDeviceIDs.DevEUI, up.FPort, up.FCnt, len(up.FRMPayload), up.Settings.Frequency, up.Settings.DataRate.LoRa.SpreadingFactor)
	// Output: ttn A84041000181C61F 2 1842 11 867500000 9
}

func ExampleMarshalDownlinks() {
	body, _ := tts.MarshalDownlinks(tts.NewDownlink(10, []byte{0x01, 0x00, 0x00, 0x3c}))
	topic, _ := tts.DownlinkTopic("vineyard-north", "ttn", "soil-probe-07", false)
	fmt.Println(topic)
	fmt.Println(string(body))
	// Output:
	// v3/vineyard-north@ttn/devices/soil-probe-07/down/push
	// {"downlinks":[{"f_port":10,"frm_payload":"AQAAPA==","priority":"NORMAL"}]}
}
