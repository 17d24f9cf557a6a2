//! switchboard's engine: the dispatcher that holds the lease, claims contacts and creates
//! calls (`dispatch`), the operations layer every client acts through (`ops`), contact
//! import and export, and the signals that stop a run. It has no UI code: the console,
//! headless mode and the CLI are clients of its snapshot and command interface.

pub mod bulk;
pub mod check;
pub mod dispatch;
pub mod export;
pub mod import;
pub mod listen;
pub mod ops;
pub mod shutdown;

use switchboard_model as model;
use switchboard_model::{config, policy};
use switchboard_store as store;
use switchboard_vapi as vapi;
