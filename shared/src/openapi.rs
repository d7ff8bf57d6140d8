//! Pieces of the OpenAPI description that every route shares: the error body and the OAuth2
//! password flow that Swagger UI's Authorize button uses.

use utoipa::Modify;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Flow, OAuth2, Password, Scopes, SecurityScheme};

/// The name routes use in `security(("bearer" = []))`.
pub const SECURITY_SCHEME: &str = "bearer";

/// Adds the OAuth2 password flow whose token URL is `/login`.
pub struct BearerSecurity;

impl Modify for BearerSecurity {
    fn modify(&self, openapi: &mut OpenApi) {
        let flow = Flow::Password(Password::new("/login", Scopes::new()));
        let scheme = SecurityScheme::OAuth2(OAuth2::with_description(
            [flow],
            "Log in with your email as `username`; the token is sent as a Bearer token.",
        ));
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(SECURITY_SCHEME, scheme);
    }
}
