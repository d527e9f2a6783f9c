//! The organisation's contact address, where operational mail (an endpoint disabled) goes. A
//! new address is used only once the code mailed to it comes back, so nobody can point Relay's
//! mail at someone else's inbox.

use chrono::{DateTime, Utc};

use super::{unavailable, Manage};
use crate::model::organization::{self, Profile};
use crate::model::problem::Problem;

impl Manage {
    pub async fn profile(&self, organization_id: &str) -> Result<Profile, Problem> {
        self.ports.organizations.profile(organization_id).await.map_err(unavailable)
    }

    /// Mails a code to `email`; the address becomes the contact once the code comes back. If the
    /// mail cannot be sent, the profile is put back as it was, so no code is pending that nobody got.
    pub async fn request_contact(&self, organization_id: &str, email: &str, now: DateTime<Utc>) -> Result<Profile, Problem> {
        let mut profile = self.profile(organization_id).await?;
        let before = profile.clone();
        let code = profile.request(email, now)?;
        self.ports.organizations.put_profile(organization_id, &profile).await.map_err(unavailable)?;
        let request = crate::model::mail::MailRequest::system(email, "contact-verification", organization::verification_data(&code));
        if let Err(e) = self.ports.mailer.request_mail(organization_id, &request).await {
            tracing::error!(error = %e, "could not send the verification mail");
            let _ = self.ports.organizations.put_profile(organization_id, &before).await;
            return Err(Problem::unavailable("Relay could not send the verification mail; retry", 5));
        }
        Ok(profile)
    }

    /// Checks the code; the pending address becomes the contact when it matches. A wrong code
    /// counts a try, so the profile is stored either way.
    pub async fn verify_contact(&self, organization_id: &str, code: &str, now: DateTime<Utc>) -> Result<Profile, Problem> {
        let mut profile = self.profile(organization_id).await?;
        let outcome = profile.verify(code, now);
        self.ports.organizations.put_profile(organization_id, &profile).await.map_err(unavailable)?;
        outcome.map(|_| profile)
    }
}
