//! Renders the dashboard into the page's body.

fn main() {
    yew::Renderer::<cortex_web::App>::new().render();
}
