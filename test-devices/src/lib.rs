//! Simulated devices for tests and the demo: the device side of DFU/DfuSe,
//! HID telephony inventory devices and a virtual USB bus.
