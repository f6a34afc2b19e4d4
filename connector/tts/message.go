package tts

import (
	"time"

	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/pbjson"
)

// Message is an application server upstream message (ApplicationUp): the
// device it concerns and exactly one of the message kinds, the one its
// topic names.
type Message struct {
	// EndDeviceIDs identifies the device (required).
	EndDeviceIDs EndDeviceIdentifiers `json:"end_device_ids"`
	// CorrelationIDs trace the message through the stack.
	CorrelationIDs []string `json:"correlation_ids,omitempty"`
	// ReceivedAt is when the application server received the message.
	ReceivedAt time.Time `json:"received_at,omitzero"`

	// Exactly one of the following is set.

	// Uplink is an uplink message (topic .../up).
	Uplink *Uplink `json:"uplink_message,omitempty"`
	// UplinkNormalized is one normalized measurement of an uplink (topic
	// .../up/normalized).
	UplinkNormalized *UplinkNormalized `json:"uplink_normalized,omitempty"`
	// JoinAccept is a join (topic .../join).
	JoinAccept *JoinAccept `json:"join_accept,omitempty"`
	// DownlinkAck is a confirmed downlink the device acknowledged (topic
	// .../down/ack).
	DownlinkAck *Downlink `json:"downlink_ack,omitempty"`
	// DownlinkNack is a confirmed downlink the device did not acknowledge
	// (topic .../down/nack).
	DownlinkNack *Downlink `json:"downlink_nack,omitempty"`
	// DownlinkSent is a downlink sent to a gateway (topic .../down/sent).
	DownlinkSent *Downlink `json:"downlink_sent,omitempty"`
	// DownlinkFailed is a downlink that failed (topic .../down/failed).
	DownlinkFailed *DownlinkFailed `json:"downlink_failed,omitempty"`
	// DownlinkQueued is a downlink added to the queue (topic
	// .../down/queued).
	DownlinkQueued *Downlink `json:"downlink_queued,omitempty"`
	// DownlinkQueueInvalidated is a queue the network server dropped, for
	// example after a rejoin (topic .../down/invalidated).
	DownlinkQueueInvalidated *InvalidatedDownlinks `json:"downlink_queue_invalidated,omitempty"`
	// LocationSolved is a location a solver computed (topic
	// .../location/solved).
	LocationSolved *LocationSolved `json:"location_solved,omitempty"`
	// ServiceData is data from an application package (topic
	// .../service/data).
	ServiceData *ServiceData `json:"service_data,omitempty"`

	// Simulated is set on a message simulated in the Console or through
	// the API rather than received from the network server.
	Simulated bool `json:"simulated,omitempty"`
}

// EndDeviceIdentifiers identifies an end device.
type EndDeviceIdentifiers struct {
	// DeviceID is the device ID within its application (not the DevEUI).
	DeviceID string `json:"device_id"`
	// ApplicationIDs identifies the application.
	ApplicationIDs ApplicationIdentifiers `json:"application_ids"`
	// DevEUI is the device's EUI (absent for some ABP devices).
	DevEUI connector.EUI64 `json:"dev_eui,omitzero"`
	// JoinEUI is the JoinEUI (AppEUI before LoRaWAN 1.1).
	JoinEUI connector.EUI64 `json:"join_eui,omitzero"`
	// DevAddr is the device address of the current session.
	DevAddr connector.DevAddr `json:"dev_addr,omitzero"`
}

// ApplicationIdentifiers identifies an application.
type ApplicationIdentifiers struct {
	// ApplicationID is the application's ID.
	ApplicationID string `json:"application_id"`
}

// GatewayIdentifiers identifies a gateway.
type GatewayIdentifiers struct {
	// GatewayID is the gateway's ID ("eui-a84041ffff24a438").
	GatewayID string `json:"gateway_id"`
	// EUI is the gateway's EUI.
	EUI connector.EUI64 `json:"eui,omitzero"`
}

// EndDeviceVersionIdentifiers names the device's make and model in the
// Device Repository.
type EndDeviceVersionIdentifiers struct {
	BrandID         string `json:"brand_id,omitempty"`
	ModelID         string `json:"model_id,omitempty"`
	HardwareVersion string `json:"hardware_version,omitempty"`
	FirmwareVersion string `json:"firmware_version,omitempty"`
	BandID          string `json:"band_id,omitempty"`
	SerialNumber    string `json:"serial_number,omitempty"`
	VendorID        uint32 `json:"vendor_id,omitempty"`
	VendorProfileID uint32 `json:"vendor_profile_id,omitempty"`
}

// NetworkIdentifiers names the network that handled the message.
type NetworkIdentifiers struct {
	// NetID is the LoRaWAN NetID, 6 hexadecimal digits ("000013").
	NetID HexBytes `json:"net_id,omitempty"`
	// NSID is the network server's EUI.
	NSID           connector.EUI64 `json:"ns_id,omitzero"`
	TenantID       string          `json:"tenant_id,omitempty"`
	ClusterID      string          `json:"cluster_id,omitempty"`
	ClusterAddress string          `json:"cluster_address,omitempty"`
	TenantAddress  string          `json:"tenant_address,omitempty"`
}

// KeyEnvelope is a key, possibly encrypted with a key encryption key.
type KeyEnvelope struct {
	Key          pbjson.Bytes `json:"key,omitempty"`
	KEKLabel     string       `json:"kek_label,omitempty"`
	EncryptedKey pbjson.Bytes `json:"encrypted_key,omitempty"`
}

// Uplink is an uplink message (ApplicationUplink).
type Uplink struct {
	// SessionKeyID is the Join Server's identifier of the session keys.
	SessionKeyID pbjson.Bytes `json:"session_key_id,omitempty"`
	// FPort is the LoRaWAN FPort (0 when absent).
	FPort uint32 `json:"f_port,omitempty"`
	// FCnt is the uplink frame counter (FCntUp).
	FCnt uint32 `json:"f_cnt,omitempty"`
	// FRMPayload is the application payload (still encrypted when AppSKey
	// is set, that is when the stack skips payload crypto).
	FRMPayload pbjson.Bytes `json:"frm_payload,omitempty"`
	// DecodedPayload is what the payload formatter made of FRMPayload;
	// nil when no formatter ran.
	DecodedPayload map[string]any `json:"decoded_payload,omitempty"`
	// DecodedPayloadWarnings are the formatter's warnings.
	DecodedPayloadWarnings []string `json:"decoded_payload_warnings,omitempty"`
	// NormalizedPayload are the normalized measurements.
	NormalizedPayload []map[string]any `json:"normalized_payload,omitempty"`
	// NormalizedPayloadWarnings are the normalizer's warnings.
	NormalizedPayloadWarnings []string `json:"normalized_payload_warnings,omitempty"`
	// RxMetadata has one entry per gateway antenna that received the
	// uplink.
	RxMetadata []RxMetadata `json:"rx_metadata,omitempty"`
	// Settings are the transmission settings the device used.
	Settings TxSettings `json:"settings,omitzero"`
	// ReceivedAt is when the network server received the uplink.
	ReceivedAt time.Time `json:"received_at,omitzero"`
	// AppSKey is set only when the stack skips payload crypto.
	AppSKey *KeyEnvelope `json:"app_s_key,omitempty"`
	// LastAFCntDown is set only with AppSKey.
	LastAFCntDown uint32 `json:"last_a_f_cnt_down,omitempty"`
	// Confirmed is set for a confirmed uplink.
	Confirmed bool `json:"confirmed,omitempty"`
	// ConsumedAirtime is the time on air.
	ConsumedAirtime pbjson.Duration `json:"consumed_airtime,omitzero"`
	// PacketErrorRate is the session's recent packet error rate, 0 to 1.
	PacketErrorRate float32 `json:"packet_error_rate,omitempty"`
	// Locations are the device's locations by source: "user" as set in the
	// Console, "frm-payload" as decoded from the payload.
	Locations map[string]Location `json:"locations,omitempty"`
	// VersionIDs names the device's make and model.
	VersionIDs *EndDeviceVersionIdentifiers `json:"version_ids,omitempty"`
	// NetworkIDs names the network.
	NetworkIDs *NetworkIdentifiers `json:"network_ids,omitempty"`
	// LastBatteryPercentage is the device's latest battery level from a
	// DevStatusAns, added in The Things Stack 3.33.1.
	LastBatteryPercentage *BatteryPercentage `json:"last_battery_percentage,omitempty"`
}

// BatteryPercentage is the latest battery level a device reported.
type BatteryPercentage struct {
	FCnt       uint32    `json:"f_cnt,omitempty"`
	Value      float32   `json:"value,omitempty"`
	ReceivedAt time.Time `json:"received_at,omitzero"`
}

// UplinkNormalized is one normalized measurement of an uplink
// (ApplicationUplinkNormalized), published on .../up/normalized.
type UplinkNormalized struct {
	SessionKeyID              pbjson.Bytes                 `json:"session_key_id,omitempty"`
	FPort                     uint32                       `json:"f_port,omitempty"`
	FCnt                      uint32                       `json:"f_cnt,omitempty"`
	FRMPayload                pbjson.Bytes                 `json:"frm_payload,omitempty"`
	NormalizedPayload         map[string]any               `json:"normalized_payload,omitempty"`
	NormalizedPayloadWarnings []string                     `json:"normalized_payload_warnings,omitempty"`
	RxMetadata                []RxMetadata                 `json:"rx_metadata,omitempty"`
	Settings                  TxSettings                   `json:"settings,omitzero"`
	ReceivedAt                time.Time                    `json:"received_at,omitzero"`
	Confirmed                 bool                         `json:"confirmed,omitempty"`
	ConsumedAirtime           pbjson.Duration              `json:"consumed_airtime,omitzero"`
	Locations                 map[string]Location          `json:"locations,omitempty"`
	VersionIDs                *EndDeviceVersionIdentifiers `json:"version_ids,omitempty"`
	NetworkIDs                *NetworkIdentifiers          `json:"network_ids,omitempty"`
}

// RxMetadata is what one gateway antenna reported of an uplink.
type RxMetadata struct {
	GatewayIDs   GatewayIdentifiers    `json:"gateway_ids"`
	PacketBroker *PacketBrokerMetadata `json:"packet_broker,omitempty"`
	Relay        *RelayMetadata        `json:"relay,omitempty"`
	AntennaIndex uint32                `json:"antenna_index,omitempty"`
	// Time is the gateway's time of reception (GPS or system clock).
	Time time.Time `json:"time,omitzero"`
	// Timestamp is the concentrator's microsecond counter.
	Timestamp                   uint32        `json:"timestamp,omitempty"`
	FineTimestamp               pbjson.Uint64 `json:"fine_timestamp,omitempty"`
	EncryptedFineTimestamp      pbjson.Bytes  `json:"encrypted_fine_timestamp,omitempty"`
	EncryptedFineTimestampKeyID string        `json:"encrypted_fine_timestamp_key_id,omitempty"`
	// RSSI is the received signal strength, dBm.
	RSSI float32 `json:"rssi,omitempty"`
	// SignalRSSI is the RSSI of the signal alone, when the gateway gives
	// it.
	SignalRSSI            *float32 `json:"signal_rssi,omitempty"`
	ChannelRSSI           float32  `json:"channel_rssi,omitempty"`
	RSSIStandardDeviation float32  `json:"rssi_standard_deviation,omitempty"`
	// SNR is the signal to noise ratio, dB.
	SNR                    float32        `json:"snr,omitempty"`
	FrequencyOffset        pbjson.Int64   `json:"frequency_offset,omitempty"`
	Location               *Location      `json:"location,omitempty"`
	DownlinkPathConstraint pbjson.Enum    `json:"downlink_path_constraint,omitempty"`
	UplinkToken            pbjson.Bytes   `json:"uplink_token,omitempty"`
	ChannelIndex           uint32         `json:"channel_index,omitempty"`
	HoppingWidth           uint32         `json:"hopping_width,omitempty"`
	FrequencyDrift         int32          `json:"frequency_drift,omitempty"`
	GPSTime                time.Time      `json:"gps_time,omitzero"`
	ReceivedAt             time.Time      `json:"received_at,omitzero"`
	Advanced               map[string]any `json:"advanced,omitempty"`
}

// PacketBrokerMetadata describes an uplink that came through Packet Broker
// from another network.
type PacketBrokerMetadata struct {
	MessageID            string            `json:"message_id,omitempty"`
	ForwarderNetID       HexBytes          `json:"forwarder_net_id,omitempty"`
	ForwarderTenantID    string            `json:"forwarder_tenant_id,omitempty"`
	ForwarderClusterID   string            `json:"forwarder_cluster_id,omitempty"`
	ForwarderGatewayEUI  connector.EUI64   `json:"forwarder_gateway_eui,omitzero"`
	ForwarderGatewayID   *string           `json:"forwarder_gateway_id,omitempty"`
	HomeNetworkNetID     HexBytes          `json:"home_network_net_id,omitempty"`
	HomeNetworkTenantID  string            `json:"home_network_tenant_id,omitempty"`
	HomeNetworkClusterID string            `json:"home_network_cluster_id,omitempty"`
	Hops                 []PacketBrokerHop `json:"hops,omitempty"`
}

// PacketBrokerHop is one hop of an uplink through Packet Broker.
type PacketBrokerHop struct {
	ReceivedAt    time.Time `json:"received_at,omitzero"`
	SenderName    string    `json:"sender_name,omitempty"`
	SenderAddress string    `json:"sender_address,omitempty"`
	ReceiverName  string    `json:"receiver_name,omitempty"`
	ReceiverAgent string    `json:"receiver_agent,omitempty"`
}

// RelayMetadata describes an uplink that came through a LoRaWAN relay.
type RelayMetadata struct {
	DeviceID   string      `json:"device_id,omitempty"`
	WORChannel pbjson.Enum `json:"wor_channel,omitempty"`
}

// Location is a position, with its source ("SOURCE_GPS",
// "SOURCE_REGISTRY", ...).
type Location struct {
	Latitude  float64     `json:"latitude,omitempty"`
	Longitude float64     `json:"longitude,omitempty"`
	Altitude  int32       `json:"altitude,omitempty"`
	Accuracy  int32       `json:"accuracy,omitempty"`
	Source    pbjson.Enum `json:"source,omitempty"`
}

// TxSettings are the transmission settings of an uplink.
type TxSettings struct {
	// DataRate is the modulation and its parameters.
	DataRate DataRate `json:"data_rate,omitzero"`
	// DataRateIndex is the LoRaWAN data rate index. Releases before 3.12
	// wrote it here; later ones leave it out (the field is reserved).
	DataRateIndex *uint32 `json:"data_rate_index,omitempty"`
	// CodingRate is the LoRa coding rate as older releases wrote it, beside
	// data_rate rather than in data_rate.lora. Parse copies it into
	// DataRate.LoRa.CodingRate when that is empty, so readers look there.
	CodingRate string `json:"coding_rate,omitempty"`
	// Frequency is the frequency in Hz.
	Frequency pbjson.Uint64 `json:"frequency,omitempty"`
	EnableCRC bool          `json:"enable_crc,omitempty"`
	// Timestamp is the concentrator's microsecond counter.
	Timestamp uint32 `json:"timestamp,omitempty"`
	// Time is the gateway's time of reception.
	Time                  time.Time           `json:"time,omitzero"`
	Downlink              *TxSettingsDownlink `json:"downlink,omitempty"`
	ConcentratorTimestamp pbjson.Int64        `json:"concentrator_timestamp,omitempty"`
}

// TxSettingsDownlink are the settings of a downlink transmission.
type TxSettingsDownlink struct {
	AntennaIndex       uint32  `json:"antenna_index,omitempty"`
	TxPower            float32 `json:"tx_power,omitempty"`
	InvertPolarization bool    `json:"invert_polarization,omitempty"`
}

// DataRate is one of LoRa, FSK or LR-FHSS with its parameters.
type DataRate struct {
	LoRa   *LoRaDataRate   `json:"lora,omitempty"`
	FSK    *FSKDataRate    `json:"fsk,omitempty"`
	LRFHSS *LRFHSSDataRate `json:"lrfhss,omitempty"`
}

// LoRaDataRate is a LoRa data rate.
type LoRaDataRate struct {
	// Bandwidth is in Hz (125000).
	Bandwidth       uint32 `json:"bandwidth,omitempty"`
	SpreadingFactor uint32 `json:"spreading_factor,omitempty"`
	// CodingRate is "4/5", "4/6", ...
	CodingRate string `json:"coding_rate,omitempty"`
}

// FSKDataRate is an FSK data rate.
type FSKDataRate struct {
	// BitRate is in bits per second.
	BitRate uint32 `json:"bit_rate,omitempty"`
}

// LRFHSSDataRate is an LR-FHSS data rate.
type LRFHSSDataRate struct {
	ModulationType        uint32 `json:"modulation_type,omitempty"`
	OperatingChannelWidth uint32 `json:"operating_channel_width,omitempty"`
	CodingRate            string `json:"coding_rate,omitempty"`
}

// JoinAccept is a join (ApplicationJoinAccept).
type JoinAccept struct {
	SessionKeyID         pbjson.Bytes `json:"session_key_id,omitempty"`
	AppSKey              *KeyEnvelope `json:"app_s_key,omitempty"`
	InvalidatedDownlinks []Downlink   `json:"invalidated_downlinks,omitempty"`
	PendingSession       bool         `json:"pending_session,omitempty"`
	ReceivedAt           time.Time    `json:"received_at,omitzero"`
}

// Downlink is an application downlink (ApplicationDownlink): what a client
// queues, and what downlink events report.
type Downlink struct {
	SessionKeyID pbjson.Bytes `json:"session_key_id,omitempty"`
	// FPort is the LoRaWAN FPort, 1 to 223 for application data.
	FPort uint32 `json:"f_port,omitempty"`
	FCnt  uint32 `json:"f_cnt,omitempty"`
	// FRMPayload is the payload, at most 255 bytes (the region's limit for
	// the data rate is lower).
	FRMPayload pbjson.Bytes `json:"frm_payload,omitempty"`
	// DecodedPayload is the payload as an object for the device's encoder,
	// instead of FRMPayload.
	DecodedPayload         map[string]any `json:"decoded_payload,omitempty"`
	DecodedPayloadWarnings []string       `json:"decoded_payload_warnings,omitempty"`
	// Confirmed asks the device to acknowledge the downlink.
	Confirmed bool             `json:"confirmed,omitempty"`
	ClassBC   *DownlinkClassBC `json:"class_b_c,omitempty"`
	// Priority is LOWEST, LOW, BELOW_NORMAL, NORMAL, ABOVE_NORMAL, HIGH or
	// HIGHEST.
	Priority       pbjson.Enum     `json:"priority,omitempty"`
	CorrelationIDs []string        `json:"correlation_ids,omitempty"`
	ConfirmedRetry *ConfirmedRetry `json:"confirmed_retry,omitempty"`
}

// DownlinkClassBC restricts a downlink to class B or C.
type DownlinkClassBC struct {
	Gateways     []ClassBCGateway `json:"gateways,omitempty"`
	AbsoluteTime time.Time        `json:"absolute_time,omitzero"`
}

// ClassBCGateway is a gateway a class B or C downlink may use.
type ClassBCGateway struct {
	GatewayIDs   GatewayIdentifiers `json:"gateway_ids"`
	AntennaIndex uint32             `json:"antenna_index,omitempty"`
	GroupIndex   uint32             `json:"group_index,omitempty"`
}

// ConfirmedRetry counts a confirmed downlink's attempts.
type ConfirmedRetry struct {
	Attempt     uint32  `json:"attempt,omitempty"`
	MaxAttempts *uint32 `json:"max_attempts,omitempty"`
}

// DownlinkFailed is a downlink and why it failed.
type DownlinkFailed struct {
	Downlink Downlink     `json:"downlink"`
	Error    ErrorDetails `json:"error"`
}

// ErrorDetails is an error of The Things Stack.
type ErrorDetails struct {
	Namespace     string         `json:"namespace,omitempty"`
	Name          string         `json:"name,omitempty"`
	MessageFormat string         `json:"message_format,omitempty"`
	Attributes    map[string]any `json:"attributes,omitempty"`
	CorrelationID string         `json:"correlation_id,omitempty"`
	Cause         *ErrorDetails  `json:"cause,omitempty"`
	Code          uint32         `json:"code,omitempty"`
	Details       []any          `json:"details,omitempty"`
}

// InvalidatedDownlinks is a downlink queue the network server dropped.
type InvalidatedDownlinks struct {
	Downlinks    []Downlink   `json:"downlinks,omitempty"`
	LastFCntDown uint32       `json:"last_f_cnt_down,omitempty"`
	SessionKeyID pbjson.Bytes `json:"session_key_id,omitempty"`
}

// LocationSolved is a location a solver service computed.
type LocationSolved struct {
	Service    string            `json:"service,omitempty"`
	Location   Location          `json:"location"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// ServiceData is data from an application package.
type ServiceData struct {
	Service string         `json:"service,omitempty"`
	Data    map[string]any `json:"data,omitempty"`
}
