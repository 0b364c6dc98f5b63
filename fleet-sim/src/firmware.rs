//! The demo's firmware: the sample models and vendor files of
//! `test_devices::samples`, imported as the server's `demo` command does
//! (`updater_server::samples`).

pub use test_devices::samples::{models, vendor_file, Model};
pub use updater_server::samples::{hardware_id, import_all, FACTORY_VERSION, NEW_VERSION};
