package chirpstack

import (
	"time"

	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/pbjson"
)

// EUI64 is a DevEUI, written in lower case as ChirpStack writes it.
type EUI64 connector.EUI64

// MarshalText writes e as 16 lower-case hexadecimal digits.
func (e EUI64) MarshalText() ([]byte, error) { return []byte(connector.EUI64(e).Lower()), nil }

// UnmarshalText reads 16 hexadecimal digits in either case.
func (e *EUI64) UnmarshalText(b []byte) error { return (*connector.EUI64)(e).UnmarshalText(b) }

// String returns e as 16 lower-case hexadecimal digits.
func (e EUI64) String() string { return connector.EUI64(e).Lower() }

// DevAddr is a device address, written in lower case as ChirpStack writes
// it.
type DevAddr connector.DevAddr

// MarshalText writes a as 8 lower-case hexadecimal digits.
func (a DevAddr) MarshalText() ([]byte, error) { return []byte(connector.DevAddr(a).Lower()), nil }

// UnmarshalText reads 8 hexadecimal digits in either case.
func (a *DevAddr) UnmarshalText(b []byte) error { return (*connector.DevAddr)(a).UnmarshalText(b) }

// String returns a as 8 lower-case hexadecimal digits.
func (a DevAddr) String() string { return connector.DevAddr(a).Lower() }

// DeviceInfo describes the device an event concerns.
type DeviceInfo struct {
	TenantID          string `json:"tenantId"`
	TenantName        string `json:"tenantName"`
	ApplicationID     string `json:"applicationId"`
	ApplicationName   string `json:"applicationName"`
	DeviceProfileID   string `json:"deviceProfileId"`
	DeviceProfileName string `json:"deviceProfileName"`
	DeviceName        string `json:"deviceName"`
	DevEUI            EUI64  `json:"devEui"`
	// DeviceClassEnabled is CLASS_A, CLASS_B or CLASS_C.
	DeviceClassEnabled pbjson.Enum `json:"deviceClassEnabled,omitempty"`
	// Tags are the device profile's and the device's tags.
	Tags map[string]string `json:"tags,omitempty"`
}

// UplinkEvent is an uplink (event "up").
type UplinkEvent struct {
	// DeduplicationID is the network server's ID (a UUID) of the uplink
	// after it merged the copies from several gateways.
	DeduplicationID string     `json:"deduplicationId"`
	Time            time.Time  `json:"time"`
	DeviceInfo      DeviceInfo `json:"deviceInfo"`
	DevAddr         DevAddr    `json:"devAddr"`
	ADR             bool       `json:"adr"`
	DR              uint32     `json:"dr"`
	FCnt            uint32     `json:"fCnt"`
	FPort           uint32     `json:"fPort"`
	Confirmed       bool       `json:"confirmed"`
	// Data is the application payload (FRMPayload).
	Data pbjson.Bytes `json:"data"`
	// Object is the decoded payload, set only when the device profile has
	// a codec.
	Object            map[string]any     `json:"object,omitempty"`
	RxInfo            []UplinkRxInfo     `json:"rxInfo"`
	TxInfo            *UplinkTxInfo      `json:"txInfo,omitempty"`
	RelayRxInfo       *UplinkRelayRxInfo `json:"relayRxInfo,omitempty"`
	JoinServerContext *JoinServerContext `json:"joinServerContext,omitempty"`
	RegionConfigID    string             `json:"regionConfigId"`
}

// UplinkRxInfo is what one gateway reported of an uplink (gw.UplinkRxInfo).
type UplinkRxInfo struct {
	// GatewayID is the gateway's EUI, 16 lower-case hexadecimal digits.
	GatewayID string `json:"gatewayId,omitempty"`
	// UplinkID is the gateway's ID of the frame.
	UplinkID              uint32          `json:"uplinkId,omitempty"`
	GWTime                time.Time       `json:"gwTime,omitzero"`
	NSTime                time.Time       `json:"nsTime,omitzero"`
	TimeSinceGPSEpoch     pbjson.Duration `json:"timeSinceGpsEpoch,omitzero"`
	FineTimeSinceGPSEpoch pbjson.Duration `json:"fineTimeSinceGpsEpoch,omitzero"`
	// RSSI is in dBm, SNR in dB.
	RSSI     int32             `json:"rssi,omitempty"`
	SNR      float32           `json:"snr,omitempty"`
	Channel  uint32            `json:"channel,omitempty"`
	RFChain  uint32            `json:"rfChain,omitempty"`
	Board    uint32            `json:"board,omitempty"`
	Antenna  uint32            `json:"antenna,omitempty"`
	Location *Location         `json:"location,omitempty"`
	Context  pbjson.Bytes      `json:"context,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// CRCStatus is NO_CRC, BAD_CRC or CRC_OK.
	CRCStatus pbjson.Enum `json:"crcStatus,omitempty"`
}

// UplinkTxInfo is how an uplink was sent (gw.UplinkTxInfo).
type UplinkTxInfo struct {
	// Frequency is in Hz.
	Frequency  uint32     `json:"frequency,omitempty"`
	Modulation Modulation `json:"modulation,omitzero"`
}

// Modulation is one of LoRa, FSK or LR-FHSS with its parameters.
type Modulation struct {
	LoRa   *LoRaModulation   `json:"lora,omitempty"`
	FSK    *FSKModulation    `json:"fsk,omitempty"`
	LRFHSS *LRFHSSModulation `json:"lrFhss,omitempty"`
}

// LoRaModulation is a LoRa modulation (gw.LoraModulationInfo).
type LoRaModulation struct {
	// Bandwidth is in Hz.
	Bandwidth       uint32 `json:"bandwidth,omitempty"`
	SpreadingFactor uint32 `json:"spreadingFactor,omitempty"`
	// CodeRateLegacy is the coding rate as ChirpStack 4.0 wrote it ("4/5").
	CodeRateLegacy string `json:"codeRateLegacy,omitempty"`
	// CodeRate is CR_4_5, CR_4_6, ... (ChirpStack 4.0 wrote "4/5" here).
	CodeRate              pbjson.Enum `json:"codeRate,omitempty"`
	PolarizationInversion bool        `json:"polarizationInversion,omitempty"`
	Preamble              uint32      `json:"preamble,omitempty"`
	NoCRC                 bool        `json:"noCrc,omitempty"`
}

// FSKModulation is an FSK modulation.
type FSKModulation struct {
	FrequencyDeviation uint32 `json:"frequencyDeviation,omitempty"`
	Datarate           uint32 `json:"datarate,omitempty"`
}

// LRFHSSModulation is an LR-FHSS modulation.
type LRFHSSModulation struct {
	OperatingChannelWidth uint32      `json:"operatingChannelWidth,omitempty"`
	CodeRateLegacy        string      `json:"codeRateLegacy,omitempty"`
	CodeRate              pbjson.Enum `json:"codeRate,omitempty"`
	GridSteps             uint32      `json:"gridSteps,omitempty"`
}

// Location is a position (common.Location); Source is UNKNOWN, GPS,
// CONFIG, GEO_RESOLVER_TDOA, ...
type Location struct {
	Latitude  float64     `json:"latitude,omitempty"`
	Longitude float64     `json:"longitude,omitempty"`
	Altitude  float64     `json:"altitude,omitempty"`
	Source    pbjson.Enum `json:"source,omitempty"`
	Accuracy  float32     `json:"accuracy,omitempty"`
}

// UplinkRelayRxInfo describes an uplink received through a relay.
type UplinkRelayRxInfo struct {
	DevEUI     EUI64  `json:"devEui"`
	Frequency  uint32 `json:"frequency"`
	DR         uint32 `json:"dr"`
	SNR        int32  `json:"snr"`
	RSSI       int32  `json:"rssi"`
	WORChannel uint32 `json:"worChannel"`
}

// JoinServerContext is the Join Server's session context.
type JoinServerContext struct {
	SessionKeyID string       `json:"sessionKeyId"`
	AppSKey      *KeyEnvelope `json:"appSKey,omitempty"`
}

// KeyEnvelope is a key, possibly wrapped with a key encryption key.
type KeyEnvelope struct {
	KEKLabel string       `json:"kekLabel"`
	AESKey   pbjson.Bytes `json:"aesKey"`
}

// JoinEvent is a join (event "join"), sent at the first uplink after OTAA.
type JoinEvent struct {
	DeduplicationID   string             `json:"deduplicationId"`
	Time              time.Time          `json:"time"`
	DeviceInfo        DeviceInfo         `json:"deviceInfo"`
	DevAddr           DevAddr            `json:"devAddr"`
	RelayRxInfo       *UplinkRelayRxInfo `json:"relayRxInfo,omitempty"`
	JoinServerContext *JoinServerContext `json:"joinServerContext,omitempty"`
	RegionConfigID    string             `json:"regionConfigId"`
}

// StatusEvent is a device status (event "status"): the device's answer to
// a DevStatusReq.
type StatusEvent struct {
	DeduplicationID string     `json:"deduplicationId"`
	Time            time.Time  `json:"time"`
	DeviceInfo      DeviceInfo `json:"deviceInfo"`
	// Margin is the demodulation SNR of the request, dB.
	Margin              int32 `json:"margin"`
	ExternalPowerSource bool  `json:"externalPowerSource"`
	// BatteryLevelUnavailable is set when the device cannot measure it.
	BatteryLevelUnavailable bool `json:"batteryLevelUnavailable"`
	// BatteryLevel is in percent.
	BatteryLevel float32 `json:"batteryLevel"`
}

// AckEvent is a confirmed downlink acknowledged, or timed out (event
// "ack").
type AckEvent struct {
	DeduplicationID string     `json:"deduplicationId"`
	Time            time.Time  `json:"time"`
	DeviceInfo      DeviceInfo `json:"deviceInfo"`
	QueueItemID     string     `json:"queueItemId"`
	Acknowledged    bool       `json:"acknowledged"`
	FCntDown        uint32     `json:"fCntDown"`
}

// TxAckEvent is a downlink a gateway accepted for transmission (event
// "txack").
type TxAckEvent struct {
	DownlinkID  uint32          `json:"downlinkId"`
	Time        time.Time       `json:"time"`
	DeviceInfo  DeviceInfo      `json:"deviceInfo"`
	QueueItemID string          `json:"queueItemId"`
	FCntDown    uint32          `json:"fCntDown"`
	GatewayID   string          `json:"gatewayId"`
	TxInfo      *DownlinkTxInfo `json:"txInfo,omitempty"`
}

// DownlinkTxInfo is how a downlink is sent (gw.DownlinkTxInfo).
type DownlinkTxInfo struct {
	Frequency  uint32         `json:"frequency,omitempty"`
	Power      int32          `json:"power,omitempty"`
	Modulation Modulation     `json:"modulation,omitzero"`
	Board      uint32         `json:"board,omitempty"`
	Antenna    uint32         `json:"antenna,omitempty"`
	Timing     map[string]any `json:"timing,omitempty"`
	Context    pbjson.Bytes   `json:"context,omitempty"`
}

// LogEvent is a log entry about a device (event "log"). Level is INFO,
// WARNING or ERROR; Code names the kind (UPLINK_CODEC, UPLINK_MIC,
// UPLINK_F_CNT_RESET, ...).
type LogEvent struct {
	Time        time.Time         `json:"time"`
	DeviceInfo  DeviceInfo        `json:"deviceInfo"`
	Level       pbjson.Enum       `json:"level"`
	Code        pbjson.Enum       `json:"code"`
	Description string            `json:"description"`
	Context     map[string]string `json:"context,omitempty"`
}

// LocationEvent is a location a geolocation resolver returned (event
// "location").
type LocationEvent struct {
	DeduplicationID string     `json:"deduplicationId"`
	Time            time.Time  `json:"time"`
	DeviceInfo      DeviceInfo `json:"deviceInfo"`
	Location        *Location  `json:"location,omitempty"`
}

// IntegrationEvent is an event of an external integration (event
// "integration"; removed from ChirpStack in October 2025).
type IntegrationEvent struct {
	DeduplicationID string         `json:"deduplicationId"`
	Time            time.Time      `json:"time"`
	DeviceInfo      DeviceInfo     `json:"deviceInfo"`
	IntegrationName string         `json:"integrationName"`
	EventType       string         `json:"eventType"`
	Object          map[string]any `json:"object,omitempty"`
}
