//go:build usbarmory

package usbarmory

import (
	"fmt"
	"net"

	"github.com/usbarmory/tamago/soc/nxp/imx6ul"
	"github.com/usbarmory/tamago/soc/nxp/usb"

	"github.com/bitw-dev/bitw/board/ecm"
	"github.com/bitw-dev/bitw/board/tamago/imx6"
)

// USB identity. 0x1209 is pid.codes' vendor ID; 0x0001 is its product ID
// reserved for private testing, which is all this function has seen. A
// product that ships needs a product ID of its own.
const (
	usbVendor  = 0x1209
	usbProduct = 0x0001
	// langEnglishUS is string descriptor zero's language (USB 2.0,
	// 9.6.7; USB Language Identifiers 1.0).
	langEnglishUS = 0x0409
	// bulkPacket is the high-speed bulk maximum packet size (USB 2.0,
	// 5.8.3).
	bulkPacket = 512
	// notifyPacket and notifyInterval size the ECM notification
	// endpoint: the 8-octet NetworkConnection notification, polled
	// every 2^(9-1) microframes (32 ms) at high speed (USB 2.0, 9.6.6).
	notifyPacket   = 16
	notifyInterval = 9
	// Endpoint attributes (USB 2.0, Table 9-13).
	transferBulk      = 2
	transferInterrupt = 3
)

// Interface Association Descriptor class codes for the device descriptor
// (USB IAD ECN, Table 1-1: Miscellaneous, Common Class, IAD).
const (
	classMiscellaneous = 0xef
	subclassCommon     = 0x02
	protocolIAD        = 0x01
)

// openECM describes one CDC ECM function (USB CDC ECM 1.2, 5: a
// communication interface with an interrupt endpoint, and a data
// interface whose default setting has no endpoints and whose alternate
// setting 1 has the bulk pair) and starts the controller in device mode
// with interrupt-driven service.
func openECM(port *usb.USB, addr, host net.HardwareAddr, irqs *imx6.Interrupts) (*ecm.Port, error) {
	const controlInterface, dataInterface = 0, 1
	p, err := ecm.New(ecm.Config{Name: PortUSB, Addr: addr, ControlInterface: controlInterface})
	if err != nil {
		return nil, err
	}
	dev := &usb.Device{}
	if err := dev.SetLanguageCodes([]uint16{langEnglishUS}); err != nil {
		return nil, err
	}
	dev.Descriptor = &usb.DeviceDescriptor{}
	dev.Descriptor.SetDefaults()
	dev.Descriptor.DeviceClass = classMiscellaneous
	dev.Descriptor.DeviceSubClass = subclassCommon
	dev.Descriptor.DeviceProtocol = protocolIAD
	dev.Descriptor.VendorId = usbVendor
	dev.Descriptor.ProductId = usbProduct
	uid := imx6ul.UniqueID()
	if dev.Descriptor.Manufacturer, err = dev.AddString("bitw"); err != nil {
		return nil, err
	}
	if dev.Descriptor.Product, err = dev.AddString("bitw red port (CDC ECM)"); err != nil {
		return nil, err
	}
	if dev.Descriptor.SerialNumber, err = dev.AddString(fmt.Sprintf("%x", uid)); err != nil {
		return nil, err
	}
	conf := &usb.ConfigurationDescriptor{}
	conf.SetDefaults()
	if err := dev.AddConfiguration(conf); err != nil {
		return nil, err
	}
	dev.Qualifier = &usb.DeviceQualifierDescriptor{}
	dev.Qualifier.SetDefaults()
	dev.Qualifier.NumConfigurations = 1

	control := &usb.InterfaceDescriptor{}
	control.SetDefaults()
	control.InterfaceClass = usb.COMMUNICATION_INTERFACE_CLASS
	control.InterfaceSubClass = usb.ETH_SUBCLASS
	control.IAD = &usb.InterfaceAssociationDescriptor{}
	control.IAD.SetDefaults()
	control.IAD.InterfaceCount = 2
	control.IAD.FunctionClass = control.InterfaceClass
	control.IAD.FunctionSubClass = control.InterfaceSubClass

	header := &usb.CDCHeaderDescriptor{}
	header.SetDefaults()
	union := &usb.CDCUnionDescriptor{}
	union.SetDefaults()
	union.MasterInterface = controlInterface
	union.SlaveInterface0 = dataInterface
	ether := &usb.CDCEthernetDescriptor{}
	ether.SetDefaults()
	ether.MaxSegmentSize = ecm.MaxFrameLen
	// iMACAddress: the host's address, as 12 hexadecimal digits
	// (USB CDC ECM 1.2, 5.4, Table 3).
	if ether.MacAddress, err = dev.AddString(fmt.Sprintf("%X", []byte(host))); err != nil {
		return nil, err
	}
	control.ClassDescriptors = [][]byte{header.Bytes(), union.Bytes(), ether.Bytes()}

	notify := &usb.EndpointDescriptor{}
	notify.SetDefaults()
	notify.EndpointAddress = 0x82 // EP2 IN
	notify.Attributes = transferInterrupt
	notify.MaxPacketSize = notifyPacket
	notify.Interval = notifyInterval
	notify.Function = p.Notify
	control.Endpoints = []*usb.EndpointDescriptor{notify}
	conf.AddInterface(control)

	idle := &usb.InterfaceDescriptor{}
	idle.SetDefaults()
	idle.NumEndpoints = 0
	idle.InterfaceClass = usb.DATA_INTERFACE_CLASS
	conf.AddInterface(idle)

	data := &usb.InterfaceDescriptor{}
	data.SetDefaults()
	data.AlternateSetting = 1
	data.NumEndpoints = 2
	data.InterfaceClass = usb.DATA_INTERFACE_CLASS
	in := &usb.EndpointDescriptor{}
	in.SetDefaults()
	in.EndpointAddress = 0x81 // EP1 IN
	in.Attributes = transferBulk
	in.MaxPacketSize = bulkPacket
	in.Function = p.HostIn
	out := &usb.EndpointDescriptor{}
	out.SetDefaults()
	out.EndpointAddress = 0x01 // EP1 OUT
	out.Attributes = transferBulk
	out.MaxPacketSize = bulkPacket
	out.Function = p.HostOut
	data.Endpoints = []*usb.EndpointDescriptor{in, out}
	conf.AddInterface(data)

	port.Device = dev
	port.Init()
	port.DeviceMode()
	// Bus reset, port change and transfer completion (IMX6ULLRM 56.6.18
	// USB Interrupt Enable, USBINTR).
	port.EnableInterrupt(usb.IRQ_URI)
	port.EnableInterrupt(usb.IRQ_PCI)
	port.EnableInterrupt(usb.IRQ_UI)
	// TamaGo's service routine handles setup requests, (re)starts the
	// endpoint goroutines on SET_CONFIGURATION and wakes the transfers
	// waiting for completion.
	irqs.Handle(port.IRQ, port.ServiceInterrupts)
	return p, nil
}
