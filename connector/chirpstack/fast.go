package chirpstack

import (
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/citymesh/citymesh/connector/pbjson"
)

// The uplink is the connector's hot path: like connector/tts, it is read by
// hand from jsontext tokens (BenchmarkParseUplink); the rarer events go
// through jsonv2's reflection. The hand-written readers accept both the
// lowerCamelCase names ChirpStack writes and the proto field names, as a
// protobuf JSON parser must.

// UnmarshalJSONFrom reads an "up" event; jsonv2.Unmarshal calls it.
func (up *UplinkEvent) UnmarshalJSONFrom(d *jsontext.Decoder) error {
	if k := d.PeekKind(); k != '{' && k != 'n' && k != 0 {
		_ = d.SkipValue()
		return fmt.Errorf("%w: want a JSON object, have %s", ErrSyntax, k)
	}
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "deduplicationId", "deduplication_id":
			up.DeduplicationID, err = pbjson.ReadString(d)
		case "time":
			up.Time, err = pbjson.ReadTime(d)
		case "deviceInfo", "device_info":
			err = up.DeviceInfo.UnmarshalJSONFrom(d)
		case "devAddr", "dev_addr":
			var a [4]byte
			a, err = pbjson.ReadDevAddr(d)
			up.DevAddr = DevAddr(a)
		case "adr":
			up.ADR, err = pbjson.ReadBool(d)
		case "dr":
			up.DR, err = pbjson.ReadUint32(d)
		case "fCnt", "f_cnt":
			up.FCnt, err = pbjson.ReadUint32(d)
		case "fPort", "f_port":
			up.FPort, err = pbjson.ReadUint32(d)
		case "confirmed":
			up.Confirmed, err = pbjson.ReadBool(d)
		case "data":
			up.Data, err = pbjson.ReadBytes(d)
		case "object":
			up.Object, err = pbjson.ReadStruct(d)
		case "rxInfo", "rx_info":
			up.RxInfo = nil
			err = pbjson.ReadArray(d, func(d *jsontext.Decoder, _ int) error {
				up.RxInfo = append(up.RxInfo, UplinkRxInfo{})
				return up.RxInfo[len(up.RxInfo)-1].read(d)
			})
		case "txInfo", "tx_info":
			if d.PeekKind() == 'n' {
				up.TxInfo = nil
				return d.SkipValue()
			}
			up.TxInfo = new(UplinkTxInfo)
			err = up.TxInfo.read(d)
		case "relayRxInfo", "relay_rx_info":
			err = jsonv2.UnmarshalDecode(d, &up.RelayRxInfo)
		case "joinServerContext", "join_server_context":
			err = jsonv2.UnmarshalDecode(d, &up.JoinServerContext)
		case "regionConfigId", "region_config_id":
			up.RegionConfigID, err = pbjson.ReadString(d)
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}

// UnmarshalJSONFrom reads device information; jsonv2 calls it for every
// event.
func (info *DeviceInfo) UnmarshalJSONFrom(d *jsontext.Decoder) error {
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "tenantId", "tenant_id":
			info.TenantID, err = pbjson.ReadString(d)
		case "tenantName", "tenant_name":
			info.TenantName, err = pbjson.ReadString(d)
		case "applicationId", "application_id":
			info.ApplicationID, err = pbjson.ReadString(d)
		case "applicationName", "application_name":
			info.ApplicationName, err = pbjson.ReadString(d)
		case "deviceProfileId", "device_profile_id":
			info.DeviceProfileID, err = pbjson.ReadString(d)
		case "deviceProfileName", "device_profile_name":
			info.DeviceProfileName, err = pbjson.ReadString(d)
		case "deviceName", "device_name":
			info.DeviceName, err = pbjson.ReadString(d)
		case "devEui", "dev_eui":
			var e [8]byte
			e, err = pbjson.ReadEUI64(d)
			info.DevEUI = EUI64(e)
		case "deviceClassEnabled", "device_class_enabled":
			info.DeviceClassEnabled, err = pbjson.ReadEnum(d)
		case "tags":
			info.Tags, err = pbjson.ReadStringMap(d)
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}

func (rx *UplinkRxInfo) read(d *jsontext.Decoder) error {
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "gatewayId", "gateway_id":
			rx.GatewayID, err = pbjson.ReadString(d)
		case "uplinkId", "uplink_id":
			rx.UplinkID, err = pbjson.ReadUint32(d)
		case "gwTime", "gw_time":
			rx.GWTime, err = pbjson.ReadTime(d)
		case "nsTime", "ns_time":
			rx.NSTime, err = pbjson.ReadTime(d)
		case "timeSinceGpsEpoch", "time_since_gps_epoch":
			v, e := pbjson.ReadDuration(d)
			rx.TimeSinceGPSEpoch, err = pbjson.Duration(v), e
		case "fineTimeSinceGpsEpoch", "fine_time_since_gps_epoch":
			v, e := pbjson.ReadDuration(d)
			rx.FineTimeSinceGPSEpoch, err = pbjson.Duration(v), e
		case "rssi":
			rx.RSSI, err = pbjson.ReadInt32(d)
		case "snr":
			rx.SNR, err = pbjson.ReadFloat32(d)
		case "channel":
			rx.Channel, err = pbjson.ReadUint32(d)
		case "rfChain", "rf_chain":
			rx.RFChain, err = pbjson.ReadUint32(d)
		case "board":
			rx.Board, err = pbjson.ReadUint32(d)
		case "antenna":
			rx.Antenna, err = pbjson.ReadUint32(d)
		case "location":
			if d.PeekKind() == 'n' {
				rx.Location = nil
				return d.SkipValue()
			}
			rx.Location = new(Location)
			err = rx.Location.read(d)
		case "context":
			rx.Context, err = pbjson.ReadBytes(d)
		case "metadata":
			rx.Metadata, err = pbjson.ReadStringMap(d)
		case "crcStatus", "crc_status":
			rx.CRCStatus, err = pbjson.ReadEnum(d)
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}

func (l *Location) read(d *jsontext.Decoder) error {
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "latitude":
			l.Latitude, err = pbjson.ReadFloat64(d)
		case "longitude":
			l.Longitude, err = pbjson.ReadFloat64(d)
		case "altitude":
			l.Altitude, err = pbjson.ReadFloat64(d)
		case "source":
			l.Source, err = pbjson.ReadEnum(d)
		case "accuracy":
			l.Accuracy, err = pbjson.ReadFloat32(d)
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}

func (tx *UplinkTxInfo) read(d *jsontext.Decoder) error {
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "frequency":
			tx.Frequency, err = pbjson.ReadUint32(d)
		case "modulation":
			_, err = pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) error {
				switch string(name) {
				case "lora":
					if d.PeekKind() == 'n' {
						tx.Modulation.LoRa = nil
						return d.SkipValue()
					}
					tx.Modulation.LoRa = new(LoRaModulation)
					return tx.Modulation.LoRa.read(d)
				case "fsk":
					return jsonv2.UnmarshalDecode(d, &tx.Modulation.FSK)
				case "lrFhss", "lr_fhss":
					return jsonv2.UnmarshalDecode(d, &tx.Modulation.LRFHSS)
				}
				return d.SkipValue()
			})
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}

func (l *LoRaModulation) read(d *jsontext.Decoder) error {
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "bandwidth":
			l.Bandwidth, err = pbjson.ReadUint32(d)
		case "spreadingFactor", "spreading_factor":
			l.SpreadingFactor, err = pbjson.ReadUint32(d)
		case "codeRateLegacy", "code_rate_legacy":
			l.CodeRateLegacy, err = pbjson.ReadString(d)
		case "codeRate", "code_rate":
			l.CodeRate, err = pbjson.ReadEnum(d)
		case "polarizationInversion", "polarization_inversion":
			l.PolarizationInversion, err = pbjson.ReadBool(d)
		case "preamble":
			l.Preamble, err = pbjson.ReadUint32(d)
		case "noCrc", "no_crc":
			l.NoCRC, err = pbjson.ReadBool(d)
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}
