package tts

import (
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/citymesh/citymesh/connector/pbjson"
)

// The uplink is the hot path of the connector: at 50000 uplinks per second
// per core, parsing, deduplicating and publishing one uplink has 20 µs.
// encoding/json took 35 to 48 µs for the reference uplink and the
// reflection of github.com/go-json-experiment/json (the prototype of
// encoding/json/v2) 18 µs, so the messages of an uplink are read by hand
// from jsontext tokens below (about 11 µs, BenchmarkParse). The other
// message kinds, rarer, go through jsonv2's reflection. encoding/json
// still reads and writes every type through its tags.

// UnmarshalJSONFrom reads an upstream message; jsonv2.Unmarshal calls it.
func (m *Message) UnmarshalJSONFrom(d *jsontext.Decoder) error {
	if k := d.PeekKind(); k != '{' && k != 'n' && k != 0 {
		_ = d.SkipValue()
		return fmt.Errorf("%w: want a JSON object, have %s", ErrSyntax, jsontext.Kind(k))
	}
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "end_device_ids":
			return m.EndDeviceIDs.read(d)
		case "correlation_ids":
			m.CorrelationIDs, err = pbjson.ReadStrings(d)
		case "received_at":
			m.ReceivedAt, err = pbjson.ReadTime(d)
		case "uplink_message":
			return readOptional(d, &m.Uplink, (*Uplink).read)
		case "uplink_normalized":
			return jsonv2.UnmarshalDecode(d, &m.UplinkNormalized)
		case "join_accept":
			return jsonv2.UnmarshalDecode(d, &m.JoinAccept)
		case "downlink_ack":
			return jsonv2.UnmarshalDecode(d, &m.DownlinkAck)
		case "downlink_nack":
			return jsonv2.UnmarshalDecode(d, &m.DownlinkNack)
		case "downlink_sent":
			return jsonv2.UnmarshalDecode(d, &m.DownlinkSent)
		case "downlink_failed":
			return jsonv2.UnmarshalDecode(d, &m.DownlinkFailed)
		case "downlink_queued":
			return jsonv2.UnmarshalDecode(d, &m.DownlinkQueued)
		case "downlink_queue_invalidated":
			return jsonv2.UnmarshalDecode(d, &m.DownlinkQueueInvalidated)
		case "location_solved":
			return jsonv2.UnmarshalDecode(d, &m.LocationSolved)
		case "service_data":
			return jsonv2.UnmarshalDecode(d, &m.ServiceData)
		case "simulated":
			m.Simulated, err = pbjson.ReadBool(d)
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}

// readOptional reads a message field: null leaves *p nil, an object sets
// it.
func readOptional[T any](d *jsontext.Decoder, p **T, read func(*T, *jsontext.Decoder) error) error {
	if d.PeekKind() == 'n' {
		_, err := d.ReadToken()
		*p = nil
		return err
	}
	v := new(T)
	if err := read(v, d); err != nil {
		return err
	}
	*p = v
	return nil
}

func (ids *EndDeviceIdentifiers) read(d *jsontext.Decoder) error {
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "device_id":
			ids.DeviceID, err = pbjson.ReadString(d)
		case "application_ids":
			_, err = pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
				if string(name) != "application_id" {
					return d.SkipValue()
				}
				ids.ApplicationIDs.ApplicationID, err = pbjson.ReadString(d)
				return err
			})
		case "dev_eui":
			ids.DevEUI, err = pbjson.ReadEUI64(d)
		case "join_eui":
			ids.JoinEUI, err = pbjson.ReadEUI64(d)
		case "dev_addr":
			ids.DevAddr, err = pbjson.ReadDevAddr(d)
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}

func (up *Uplink) read(d *jsontext.Decoder) error {
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "session_key_id":
			up.SessionKeyID, err = pbjson.ReadBytes(d)
		case "f_port":
			up.FPort, err = pbjson.ReadUint32(d)
		case "f_cnt":
			up.FCnt, err = pbjson.ReadUint32(d)
		case "frm_payload":
			up.FRMPayload, err = pbjson.ReadBytes(d)
		case "decoded_payload":
			up.DecodedPayload, err = pbjson.ReadStruct(d)
		case "decoded_payload_warnings":
			up.DecodedPayloadWarnings, err = pbjson.ReadStrings(d)
		case "normalized_payload":
			up.NormalizedPayload = nil
			err = pbjson.ReadArray(d, func(d *jsontext.Decoder, _ int) error {
				s, err := pbjson.ReadStruct(d)
				up.NormalizedPayload = append(up.NormalizedPayload, s)
				return err
			})
		case "normalized_payload_warnings":
			up.NormalizedPayloadWarnings, err = pbjson.ReadStrings(d)
		case "rx_metadata":
			up.RxMetadata = nil
			err = pbjson.ReadArray(d, func(d *jsontext.Decoder, _ int) error {
				up.RxMetadata = append(up.RxMetadata, RxMetadata{})
				return up.RxMetadata[len(up.RxMetadata)-1].read(d)
			})
		case "settings":
			err = up.Settings.read(d)
		case "received_at":
			up.ReceivedAt, err = pbjson.ReadTime(d)
		case "app_s_key":
			err = jsonv2.UnmarshalDecode(d, &up.AppSKey)
		case "last_a_f_cnt_down":
			up.LastAFCntDown, err = pbjson.ReadUint32(d)
		case "confirmed":
			up.Confirmed, err = pbjson.ReadBool(d)
		case "consumed_airtime":
			var v = &up.ConsumedAirtime
			t, e := pbjson.ReadDuration(d)
			*v, err = pbjson.Duration(t), e
		case "packet_error_rate":
			up.PacketErrorRate, err = pbjson.ReadFloat32(d)
		case "locations":
			up.Locations = nil
			_, err = pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) error {
				var l Location
				key := string(name)
				if err := l.read(d); err != nil {
					return err
				}
				if up.Locations == nil {
					up.Locations = make(map[string]Location, 2)
				}
				up.Locations[key] = l
				return nil
			})
		case "version_ids":
			return readOptional(d, &up.VersionIDs, (*EndDeviceVersionIdentifiers).read)
		case "network_ids":
			return readOptional(d, &up.NetworkIDs, (*NetworkIdentifiers).read)
		case "last_battery_percentage":
			err = jsonv2.UnmarshalDecode(d, &up.LastBatteryPercentage)
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}

func (md *RxMetadata) read(d *jsontext.Decoder) error {
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "gateway_ids":
			err = md.GatewayIDs.read(d)
		case "antenna_index":
			md.AntennaIndex, err = pbjson.ReadUint32(d)
		case "time":
			md.Time, err = pbjson.ReadTime(d)
		case "timestamp":
			md.Timestamp, err = pbjson.ReadUint32(d)
		case "fine_timestamp":
			var v uint64
			v, err = pbjson.ReadUint64(d)
			md.FineTimestamp = pbjson.Uint64(v)
		case "encrypted_fine_timestamp":
			md.EncryptedFineTimestamp, err = pbjson.ReadBytes(d)
		case "encrypted_fine_timestamp_key_id":
			md.EncryptedFineTimestampKeyID, err = pbjson.ReadString(d)
		case "rssi":
			md.RSSI, err = pbjson.ReadFloat32(d)
		case "signal_rssi":
			if d.PeekKind() == 'n' {
				md.SignalRSSI = nil
				return d.SkipValue()
			}
			var v float32
			v, err = pbjson.ReadFloat32(d)
			md.SignalRSSI = &v
		case "channel_rssi":
			md.ChannelRSSI, err = pbjson.ReadFloat32(d)
		case "rssi_standard_deviation":
			md.RSSIStandardDeviation, err = pbjson.ReadFloat32(d)
		case "snr":
			md.SNR, err = pbjson.ReadFloat32(d)
		case "frequency_offset":
			var v int64
			v, err = pbjson.ReadInt64(d)
			md.FrequencyOffset = pbjson.Int64(v)
		case "location":
			return readOptional(d, &md.Location, (*Location).read)
		case "downlink_path_constraint":
			md.DownlinkPathConstraint, err = pbjson.ReadEnum(d)
		case "uplink_token":
			md.UplinkToken, err = pbjson.ReadBytes(d)
		case "channel_index":
			md.ChannelIndex, err = pbjson.ReadUint32(d)
		case "hopping_width":
			md.HoppingWidth, err = pbjson.ReadUint32(d)
		case "frequency_drift":
			md.FrequencyDrift, err = pbjson.ReadInt32(d)
		case "gps_time":
			md.GPSTime, err = pbjson.ReadTime(d)
		case "received_at":
			md.ReceivedAt, err = pbjson.ReadTime(d)
		case "advanced":
			md.Advanced, err = pbjson.ReadStruct(d)
		case "packet_broker":
			err = jsonv2.UnmarshalDecode(d, &md.PacketBroker)
		case "relay":
			err = jsonv2.UnmarshalDecode(d, &md.Relay)
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}

func (g *GatewayIdentifiers) read(d *jsontext.Decoder) error {
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "gateway_id":
			g.GatewayID, err = pbjson.ReadString(d)
		case "eui":
			g.EUI, err = pbjson.ReadEUI64(d)
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
			l.Altitude, err = pbjson.ReadInt32(d)
		case "accuracy":
			l.Accuracy, err = pbjson.ReadInt32(d)
		case "source":
			l.Source, err = pbjson.ReadEnum(d)
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}

func (s *TxSettings) read(d *jsontext.Decoder) error {
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "data_rate":
			_, err = pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) error {
				switch string(name) {
				case "lora":
					return readOptional(d, &s.DataRate.LoRa, (*LoRaDataRate).read)
				case "fsk":
					return jsonv2.UnmarshalDecode(d, &s.DataRate.FSK)
				case "lrfhss":
					return jsonv2.UnmarshalDecode(d, &s.DataRate.LRFHSS)
				}
				return d.SkipValue()
			})
		case "data_rate_index":
			if d.PeekKind() == 'n' {
				s.DataRateIndex = nil
				return d.SkipValue()
			}
			var v uint32
			v, err = pbjson.ReadUint32(d)
			s.DataRateIndex = &v
		case "coding_rate":
			s.CodingRate, err = pbjson.ReadString(d)
		case "frequency":
			var v uint64
			v, err = pbjson.ReadUint64(d)
			s.Frequency = pbjson.Uint64(v)
		case "enable_crc":
			s.EnableCRC, err = pbjson.ReadBool(d)
		case "timestamp":
			s.Timestamp, err = pbjson.ReadUint32(d)
		case "time":
			s.Time, err = pbjson.ReadTime(d)
		case "downlink":
			err = jsonv2.UnmarshalDecode(d, &s.Downlink)
		case "concentrator_timestamp":
			var v int64
			v, err = pbjson.ReadInt64(d)
			s.ConcentratorTimestamp = pbjson.Int64(v)
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}

func (l *LoRaDataRate) read(d *jsontext.Decoder) error {
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "bandwidth":
			l.Bandwidth, err = pbjson.ReadUint32(d)
		case "spreading_factor":
			l.SpreadingFactor, err = pbjson.ReadUint32(d)
		case "coding_rate":
			l.CodingRate, err = pbjson.ReadString(d)
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}

func (v *EndDeviceVersionIdentifiers) read(d *jsontext.Decoder) error {
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "brand_id":
			v.BrandID, err = pbjson.ReadString(d)
		case "model_id":
			v.ModelID, err = pbjson.ReadString(d)
		case "hardware_version":
			v.HardwareVersion, err = pbjson.ReadString(d)
		case "firmware_version":
			v.FirmwareVersion, err = pbjson.ReadString(d)
		case "band_id":
			v.BandID, err = pbjson.ReadString(d)
		case "serial_number":
			v.SerialNumber, err = pbjson.ReadString(d)
		case "vendor_id":
			v.VendorID, err = pbjson.ReadUint32(d)
		case "vendor_profile_id":
			v.VendorProfileID, err = pbjson.ReadUint32(d)
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}

func (n *NetworkIdentifiers) read(d *jsontext.Decoder) error {
	_, err := pbjson.ReadObject(d, func(d *jsontext.Decoder, name []byte) (err error) {
		switch string(name) {
		case "net_id":
			var s string
			if s, err = pbjson.ReadString(d); err == nil {
				if err = n.NetID.UnmarshalText([]byte(s)); err != nil {
					err = fmt.Errorf("%w: %v", pbjson.ErrValue, err)
				}
			}
		case "ns_id":
			n.NSID, err = pbjson.ReadEUI64(d)
		case "tenant_id":
			n.TenantID, err = pbjson.ReadString(d)
		case "cluster_id":
			n.ClusterID, err = pbjson.ReadString(d)
		case "cluster_address":
			n.ClusterAddress, err = pbjson.ReadString(d)
		case "tenant_address":
			n.TenantAddress, err = pbjson.ReadString(d)
		default:
			return d.SkipValue()
		}
		return err
	})
	return err
}
