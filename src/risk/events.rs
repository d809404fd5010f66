//! What the risk feature tells the features above it (`crate::events`; wired in `reactions.rs`).

use super::model::AssessmentRecord;
use crate::auth::model::Actor;
use crate::events::Topic;
use crate::pregnancy::model::Pregnancy;

/// A clinician confirmed a grade (its facts — HIV, syphilis, HBsAg among them — are now what the
/// record says of her).
#[derive(Debug, Clone)]
pub struct GradeConfirmed {
    pub actor: Actor,
    pub pregnancy: Pregnancy,
    pub assessment: AssessmentRecord,
}

/// Reacted to by child: a positive test result in the confirmed facts starts (or ends) the
/// 预防母婴传播 items of her babies.
pub static GRADE_CONFIRMED: Topic<GradeConfirmed> = Topic::new("grade confirmed");
