//! Scenario files. (Being written.)
/// A scripted scenario.
#[derive(Debug, Clone, Default)]
pub struct Scenario;
/// A camera of a scenario.
#[derive(Debug, Clone, Default)]
pub struct CameraSpec;
/// A scripted pass.
#[derive(Debug, Clone, Default)]
pub struct PassSpec;
/// A scripted alarm.
#[derive(Debug, Clone, Default)]
pub struct AlarmSpec;
