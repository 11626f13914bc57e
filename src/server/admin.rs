//! Admin requests on the tenant's settings (PROTOCOL.md §7, §10.0 settings)
//! and its directory (§7.1; the requests themselves are shared with the HTTP
//! API, [`crate::api::directory`]).
//!
//! Every setting is validated strictly before it reaches the store: a patch
//! is laid over the current settings and the result must pass
//! [`validate_settings`], so cross-field rules (the sign-in reason must be a
//! listed code) hold. A refused patch changes nothing.

use super::handlers::Reply;
use super::session::Session;
use crate::domain::pause::validate_settings;
use crate::domain::permissions;
use crate::domain::Event;
use crate::error::{HubError, HubResult};
use serde_json::json;

impl Session {
    pub(super) async fn update_settings(
        &self,
        patch: crate::backplane::SettingsPatch,
    ) -> HubResult<Reply> {
        permissions::require_admin(&self.principal())?;
        if patch.is_empty() {
            return Err(HubError::bad_request(
                "settings must name at least one of supervisor_can_end_wrap_up, wrap_up_seconds, unassigned_access_default, \
                 capacity, pause_reasons, sign_in_status, sign_in_reason, restore_window_s",
            ));
        }
        let mut merged = self.tenant.settings();
        patch.apply_to(&mut merged);
        validate_settings(&merged).map_err(HubError::bad_request)?;
        let (seq, settings) = self
            .hub
            .backplane
            .update_settings(
                self.tenant.id(),
                &patch,
                &self.actor(),
                self.once.as_deref(),
            )
            .await?;
        self.tenant
            .wait_for(seq, self.hub.config.command_timeout())
            .await;
        if patch.unassigned_access_default.is_some()
            || patch.capacity.is_some()
            || patch.pause_reasons.is_some()
        {
            // Effective access, `lingering` flags, `free_slots` and overrun
            // marks that a new limit no longer supports are part of each
            // record. Nobody is disconnected (seed rule 4): only derived
            // fields change.
            let actor = self.actor();
            for record in self.tenant.records() {
                // The settings are committed: a record that cannot be
                // renormalized now (the store away, a lost race) must not turn
                // the admin's reply into an error. Each record is renormalized
                // again by its next change.
                if let Err(e) = self
                    .hub
                    .change(
                        &self.tenant,
                        &record.id,
                        &actor,
                        &Event::Renormalize,
                        |_| Ok(()),
                    )
                    .await
                {
                    tracing::warn!(tenant = self.tenant.id(), agent = %record.id, error = %e, "derived fields not renormalized after a settings change");
                }
            }
        }
        if patch.pause_reasons.is_some() {
            // New limits apply to pauses already running.
            for record in self.tenant.records() {
                self.hub.schedule_pause_overrun(&self.tenant, &record);
            }
        }
        Ok(Reply::Now(json!({ "settings": settings })))
    }

    pub(super) fn read_directory(&self) -> HubResult<Reply> {
        permissions::require_admin(&self.principal())?;
        Ok(Reply::Now(crate::api::directory::directory_json(
            &self.tenant,
        )))
    }

    pub(super) async fn change_directory(
        &self,
        change: crate::directory::change::DirectoryChange,
    ) -> HubResult<Reply> {
        permissions::require_admin(&self.principal())?;
        let result = crate::api::directory::apply(
            &self.hub,
            &self.tenant,
            &self.actor(),
            change,
            self.once.as_deref(),
        )
        .await?;
        Ok(Reply::Now(result))
    }
}
