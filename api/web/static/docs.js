// Swagger UI on this host's OpenAPI document (the page's only script besides the bundle).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
